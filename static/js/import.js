// A contact upload's page: while a task checks or imports the file, show its progress; reload when it is done.
(function () {
  "use strict";
  var task = document.getElementById("upload-task");
  if (!task) return;
  var bar = document.getElementById("task-bar");
  var percent = document.getElementById("task-percent");

  function poll() {
    fetch(task.dataset.progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && body.state !== task.dataset.state) {
          window.location.reload();
          return;
        }
        if (body) {
          bar.value = body.progress;
          percent.textContent = body.progress + "%";
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
