// Questionnaire form: shows and hides questions as earlier answers enable them (the server applies
// the same rules again), and saves progress quietly after each change.
(function () {
  "use strict";
  var form = document.getElementById("qform");
  if (!form) { return; }
  var saveTimer = null;

  function valuesOf(itemId) {
    var out = [];
    form.querySelectorAll('[name="' + itemId + '"]').forEach(function (el) {
      if ((el.type === "radio" || el.type === "checkbox") && !el.checked) { return; }
      if (el.disabled || el.value === "") { return; }
      out.push(el.value);
    });
    return out;
  }
  function holds(cond) {
    var vals = valuesOf(cond.item);
    if (cond.op === "exists") { return (vals.length > 0) === (cond.value === "True" || cond.value === "true"); }
    if (!vals.length) { return false; }
    if (cond.op === "contains" || (vals.length > 1 && cond.op === "=")) { return vals.indexOf(cond.value) >= 0; }
    if (vals.length > 1 && cond.op === "!=") { return vals.indexOf(cond.value) < 0; }
    var a = parseFloat(vals[0]), b = parseFloat(cond.value);
    var numeric = !isNaN(a) && !isNaN(b) && /^-?[\d.]+$/.test(vals[0]);
    switch (cond.op) {
      case "=": return numeric ? a === b : vals[0] === cond.value;
      case "!=": return numeric ? a !== b : vals[0] !== cond.value;
      case ">": return numeric && a > b;
      case ">=": return numeric && a >= b;
      case "<": return numeric && a < b;
      case "<=": return numeric && a <= b;
    }
    return false;
  }
  function apply() {
    // In document order, so a hidden question's answer no longer enables later ones.
    // A hidden group hides everything nested under it (deeper blocks that follow it).
    var hiddenBelow = null;
    form.querySelectorAll("[data-item]").forEach(function (block) {
      var depth = parseInt((block.className.match(/depth-(\d+)/) || [0, 0])[1], 10);
      if (hiddenBelow !== null && depth <= hiddenBelow) { hiddenBelow = null; }
      var when = block.dataset.when;
      var on = hiddenBelow === null;
      if (on && when) {
        var results = JSON.parse(when).map(holds);
        on = block.dataset.any === "true" ? results.some(Boolean) : results.every(Boolean);
      }
      if (!on && hiddenBelow === null && block.classList.contains("group")) { hiddenBelow = depth; }
      block.hidden = !on;
      block.querySelectorAll("input, select, textarea").forEach(function (el) { el.disabled = !on; });
    });
  }
  function save() {
    if (form.dataset.preview) { return; }  // the studio's preview of a draft: nothing is stored
    var data = new FormData(form);
    data.set("action", "save");
    fetch(form.action, { method: "POST", body: data, headers: { "Accept": "application/json" } }).catch(function () {});
  }
  form.addEventListener("change", function () {
    apply();
    window.clearTimeout(saveTimer);
    saveTimer = window.setTimeout(save, 800);
  });
  apply();
})();
