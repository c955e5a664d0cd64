// Long work: while a job runs, ask the server for its progress every two seconds and move the bar; when it
// finishes, reload once so the page shows its counts, problems and result link.
(function () {
  "use strict";
  var box = document.querySelector("[data-work-job]");
  if (!box || box.getAttribute("data-work-finished") === "true") return;
  var id = box.getAttribute("data-work-job");
  var bar = document.getElementById("work-bar-" + id);
  var done = box.querySelector("[data-work-done]");
  function poll() {
    fetch("/staff/work/" + id + "/status", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (s) {
        if (!s) return setTimeout(poll, 5000);
        if (s.percent !== null && bar) bar.value = s.percent;
        if (done) done.textContent = s.done;
        if (s.finished) { window.location.reload(); return; }
        setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
