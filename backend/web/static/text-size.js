// Large-text mode on the patient pages: one toggle, remembered on this device (localStorage), applied
// before the page paints (this script is loaded in <head>, not deferred) so the text never jumps.
(function () {
  "use strict";
  var KEY = "careloop.largeText";
  var root = document.documentElement;
  function stored() {
    try { return window.localStorage.getItem(KEY) === "1"; } catch (e) { return false; }
  }
  function remember(on) {
    try { window.localStorage.setItem(KEY, on ? "1" : "0"); } catch (e) { /* private mode: this page only */ }
  }
  if (stored()) { root.classList.add("large-text"); }
  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("text-size");
    if (!button) { return; }
    function sync() { button.setAttribute("aria-pressed", root.classList.contains("large-text") ? "true" : "false"); }
    button.hidden = false;  // without JavaScript there is no toggle; the browser's own zoom still works
    sync();
    button.addEventListener("click", function () {
      var on = !root.classList.contains("large-text");
      root.classList.toggle("large-text", on);
      remember(on);
      sync();
    });
  });
})();
