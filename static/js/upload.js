// Contact upload: show the upload's progress, then the import's, instead of a frozen page.
(function () {
  "use strict";
  var upload = document.getElementById("upload-form");
  if (upload) {
    upload.addEventListener("submit", function (event) {
      if (!upload.querySelector("input[type=file]").files.length) return; // let the server say what is missing
      event.preventDefault();
      var bar = document.getElementById("upload-bar");
      var status = document.getElementById("upload-status");
      document.getElementById("upload-progress").hidden = false;
      upload.querySelector("button[type=submit]").disabled = true;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", upload.action || window.location.href);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        bar.value = Math.round((100 * e.loaded) / e.total);
        // Sent: the server now reads every row (about 20,000 a second) before it answers.
        status.textContent = e.loaded < e.total ? bar.value + "%" : "Checking every row…";
      });
      xhr.addEventListener("load", function () {
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
        if (xhr.status === 200 && body && body.preview) {
          status.textContent = "Opening the preview…";
          window.location.assign(body.preview);
        } else {
          // A form error: submit the plain way so the server's page shows it at the field.
          HTMLFormElement.prototype.submit.call(upload);
        }
      });
      xhr.addEventListener("error", function () {
        status.textContent = "The upload failed: check the connection and try again.";
        upload.querySelector("button[type=submit]").disabled = false;
      });
      xhr.send(new FormData(upload));
    });
  }
  var confirm = document.getElementById("import-form");
  if (confirm) {
    confirm.addEventListener("submit", function () {
      document.getElementById("import-progress").hidden = false;
      window.setTimeout(function () { confirm.querySelector("button[type=submit]").disabled = true; }, 0);
    });
  }
})();
