// The plan editor's preview: posts the unsaved form and swaps in the population without leaving the page
// (without this script the button posts the form and the whole editor comes back with the preview).
(function () {
  "use strict";
  var form = document.getElementById("plan-form");
  var button = document.getElementById("preview");
  var target = document.getElementById("plan-preview");
  if (!form || !button || !target || !window.fetch) return;
  button.addEventListener("click", function (event) {
    event.preventDefault();
    var data = new FormData(form);
    data.set("fragment", "1");
    button.disabled = true;
    target.setAttribute("aria-busy", "true");
    fetch(button.getAttribute("formaction"), { method: "POST", body: data, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.text();
      })
      .then(function (html) { target.innerHTML = html; })
      .catch(function () { form.action = button.getAttribute("formaction"); form.submit(); })
      .finally(function () { button.disabled = false; target.removeAttribute("aria-busy"); });
  });
})();
