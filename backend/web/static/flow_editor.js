// Flow editor: while the editor types, ask the server what the form as typed would have wrong (the same
// validation a save and a publish run) and show it in the Check box. Nothing is saved; without
// JavaScript the problems appear after a save.
(function () {
  "use strict";
  var forms = document.querySelectorAll("form.flow-edit[data-check]");
  var box = document.getElementById("live-problems");
  if (!forms.length || !box || !window.fetch) return;
  var timer = null, asked = 0;

  function show(result) {
    box.textContent = "";
    var line = document.createElement("p");
    line.id = "problem-count";
    if (result.count) {
      line.className = "error";
      line.textContent = box.dataset.some.replace("%(n)s", String(result.count));
    } else {
      line.textContent = box.dataset.none;
    }
    box.appendChild(line);
    if (!result.count) return;
    var list = document.createElement("ul");
    list.className = "problems";
    list.id = "problem-list";
    result.problems.forEach(function (p) {
      var item = document.createElement("li");
      item.dataset.step = p.step;
      if (p.step) {
        var code = document.createElement("code");
        code.textContent = p.step;
        item.appendChild(code);
        item.appendChild(document.createTextNode(": "));
      }
      item.appendChild(document.createTextNode(p.text));
      list.appendChild(item);
    });
    box.appendChild(list);
  }

  function check(form) {
    var mine = ++asked;
    fetch(form.dataset.check, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (result) { if (result && mine === asked) show(result); })
      .catch(function () { /* the save still validates */ });
  }

  // each step is a form of its own: the one typed in is checked with the rest of the draft as saved
  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("input", function () {
      if (timer) clearTimeout(timer);
      timer = setTimeout(function () { check(form); }, 400);
    });
  });
})();
