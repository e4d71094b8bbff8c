// Contact upload: refuse a file that is too large before sending it, then show the upload's progress.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) return;
  var status = document.getElementById("upload-status");
  var button = form.querySelector("button[type=submit]");

  function stop(message) {
    status.textContent = message;
    status.className = "error";
    document.getElementById("upload-progress").hidden = true;
    button.disabled = false;
  }

  form.addEventListener("submit", function (event) {
    var file = form.querySelector("input[type=file]").files[0];
    if (!file) return; // let the server say what is missing
    event.preventDefault();
    if (file.size > Number(form.dataset.maxBytes)) {
      stop("The file is larger than " + form.dataset.limit + ": split it into smaller files.");
      return;
    }
    var bar = document.getElementById("upload-bar");
    document.getElementById("upload-progress").hidden = false;
    status.className = "";
    status.textContent = "";
    button.disabled = true;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
    });
    xhr.addEventListener("load", function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
      if (xhr.status === 200 && body && body.next) {
        status.textContent = "Received: opening its page…";
        window.location.assign(body.next);
      } else {
        stop((body && body.error) || "The server refused the file (HTTP " + xhr.status + ").");
      }
    });
    xhr.addEventListener("error", function () {
      stop("The upload failed: check the connection and try again.");
    });
    xhr.send(new FormData(form));
  });
})();
