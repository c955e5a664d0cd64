// Staff inbox: keep the queue counts current from the server's event stream; offer a reload on change.
(function () {
  "use strict";
  var box = document.querySelector("[data-inbox-counts]");
  if (!box || !window.EventSource) return;
  var notice = document.getElementById("inbox-changed");
  var source = new EventSource("/staff/inbox/events");
  source.addEventListener("counts", function (event) {
    var counts = JSON.parse(event.data);
    Object.keys(counts).forEach(function (queue) {
      var el = box.querySelector('[data-count="' + queue + '"]');
      if (el && el.textContent !== String(counts[queue])) {
        el.textContent = counts[queue];
        if (notice) notice.hidden = false;
      }
    });
  });
})();
