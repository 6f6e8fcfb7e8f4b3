// Import wizard: upload with a progress bar, then follow the import job until it ends.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (form && window.XMLHttpRequest && window.FormData) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var bar = document.getElementById("upload-progress");
      bar.hidden = false;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) bar.firstElementChild.style.width = Math.round((100 * e.loaded) / e.total) + "%";
      };
      xhr.onload = function () {
        if (xhr.status < 400 && xhr.responseURL) { window.location = xhr.responseURL; return; }
        document.open(); document.write(xhr.responseText); document.close();
      };
      // If the request cannot be made at all, fall back to a plain form post.
      xhr.onerror = function () { form.submit(); };
      xhr.send(new FormData(form));
    });
  }
  var job = document.getElementById("job");
  if (!job) return;
  var status = job.dataset.status;
  var running = status === "running" || (status === "staged" && job.dataset.started === "1");
  if (!running) return;
  var poll = function () {
    fetch("/api/v1/imports/" + job.dataset.job, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (report) {
        document.getElementById("job-bar").style.width = Math.round(100 * (report.progress || 0)) + "%";
        document.getElementById("job-stage").textContent = report.stage || "";
        if (report.status === "done" || report.status === "failed") { window.location = window.location.pathname; return; }
        setTimeout(poll, 500);
      })
      .catch(function () { setTimeout(poll, 1500); });
  };
  poll();
})();
