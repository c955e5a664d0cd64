// The provider-template editor: as a WeChat field list is typed, each limited field's length in every
// language, with that language's longest known values in place of {hospital} and {title}. The server
// checks the same on save (backend/content/provider_templates.py); this only shows it sooner.
(function () {
  "use strict";
  var form = document.getElementById("templates-form");
  if (!form) { return; }
  var limit = parseInt(form.dataset.limit, 10);
  var unlimited = (form.dataset.unlimited || "").split(" ");
  var samples = JSON.parse(form.dataset.samples || "{}");

  function render(text, values) {
    return text.replace(/\{([a-z_]+)\}/g, function (_m, name) { return values[name] || ""; });
  }

  function update(area) {
    var list = document.getElementById(area.getAttribute("aria-describedby"));
    if (!list) { return; }
    list.textContent = "";
    area.value.split("\n").forEach(function (line) {
      var at = line.indexOf("=");
      if (at < 0) { return; }
      var name = line.slice(0, at).trim();
      var value = line.slice(at + 1).trim();
      if (!name || unlimited.indexOf(name) >= 0) { return; }
      var item = document.createElement("li");
      item.dataset.field = name;
      var code = document.createElement("code");
      code.setAttribute("translate", "no");
      code.textContent = name;
      item.appendChild(code);
      item.appendChild(document.createTextNode(": "));
      Object.keys(samples).forEach(function (lang, i) {
        var count = Array.from(render(value, samples[lang])).length;
        var span = document.createElement("span");
        span.setAttribute("translate", "no");
        span.dataset.lang = lang;
        if (count > limit) { span.className = "error"; }
        span.textContent = lang + " " + count + "/" + limit;
        if (i > 0) { item.appendChild(document.createTextNode(" · ")); }
        item.appendChild(span);
      });
      list.appendChild(item);
    });
  }

  Array.prototype.forEach.call(form.querySelectorAll("textarea.wechat-fields"), function (area) {
    area.addEventListener("input", function () { update(area); });
  });
})();
