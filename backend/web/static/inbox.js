// Staff inbox: keep the queue counts current from the server's event stream, and when they change fetch
// the same page again and swap in its task list, so new items appear without a reload.
(function () {
  "use strict";
  var box = document.querySelector("[data-inbox-counts]");
  if (!box || !window.EventSource) return;
  var notice = document.getElementById("inbox-changed");
  var fetching = false, again = false;

  function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("tasks");
        var old = document.getElementById("tasks");
        if (fresh && old) {
          old.replaceWith(document.importNode(fresh, true));
          if (notice) notice.hidden = false;
        }
      })
      .catch(function () { if (notice) notice.hidden = false; })  // the reload link still works
      .then(function () {
        fetching = false;
        if (again) { again = false; refresh(); }
      });
  }

  var source = new EventSource("/staff/inbox/events");
  source.addEventListener("counts", function (event) {
    var counts = JSON.parse(event.data);
    var changed = false;
    Object.keys(counts).forEach(function (queue) {
      var el = box.querySelector('[data-count="' + queue + '"]');
      if (el && el.textContent !== String(counts[queue])) {
        el.textContent = counts[queue];
        changed = true;
      }
    });
    if (changed) refresh();
  });
})();
