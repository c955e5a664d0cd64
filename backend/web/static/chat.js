// Web chat page: posts without reloading and picks up replies (bot or staff) by polling.
(function () {
  "use strict";
  var main = document.querySelector("main.chat");
  if (!main) { return; }
  var token = main.dataset.token;
  var list = document.getElementById("messages");
  var notice = document.getElementById("notice");
  var composer = document.getElementById("composer");
  var input = document.getElementById("text");
  var sending = false;

  function lastId() {
    var items = list.querySelectorAll("li[data-id]");
    return items.length ? parseInt(items[items.length - 1].dataset.id, 10) : 0;
  }
  function newClientId() {
    var a = new Uint8Array(16);
    window.crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function choiceForm(choice) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = "/c/" + token + "/messages";
    form.className = "choice-form";
    [["choice", choice.payload], ["text", choice.label], ["client_id", newClientId()]].forEach(function (kv) {
      var h = document.createElement("input");
      h.type = "hidden"; h.name = kv[0]; h.value = kv[1];
      form.appendChild(h);
    });
    var b = document.createElement("button");
    b.type = "submit"; b.className = "choice"; b.textContent = choice.label;
    form.appendChild(b);
    return form;
  }
  function append(items) {
    items.forEach(function (item) {
      if (list.querySelector('li[data-id="' + item.id + '"]')) { return; }
      list.querySelectorAll(".choices").forEach(function (c) { c.remove(); });
      var li = document.createElement("li");
      li.className = "msg " + (item.mine ? "mine" : "theirs");
      li.dataset.id = item.id;
      var p = document.createElement("p");
      p.textContent = item.text;
      li.appendChild(p);
      if (item.choices.length) {
        var box = document.createElement("div");
        box.className = "choices";
        item.choices.forEach(function (c) { box.appendChild(choiceForm(c)); });
        li.appendChild(box);
      }
      item.links.forEach(function (l) {
        var a = document.createElement("a");
        a.href = l.url; a.textContent = l.label;
        li.appendChild(a);
      });
      list.appendChild(li);
    });
    window.scrollTo(0, document.body.scrollHeight);
  }
  function show(text) {
    notice.textContent = text || "";
    notice.hidden = !text;
  }
  function send(form) {
    if (sending) { return; }
    sending = true;
    var data = new FormData(form);
    data.append("after", String(lastId()));
    fetch(form.action, { method: "POST", body: data, headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (!res.ok) { show(res.body.message); return; }
        show("");
        append(res.body.items);
        if (form === composer) {
          input.value = "";
          form.querySelector('input[name="client_id"]').value = newClientId();
        }
      })
      .catch(function () { show("…"); })
      .finally(function () { sending = false; });
  }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form === composer || form.classList.contains("choice-form")) {
      ev.preventDefault();
      send(form);
    }
  });
  function poll() {
    fetch("/c/" + token + "/messages?after=" + lastId(), { headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { items: [] }; })
      .then(function (body) { append(body.items); })
      .catch(function () { /* offline for a moment: try again next tick */ });
  }
  window.setInterval(poll, 1500);
})();
