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
  var jump = document.getElementById("jump");
  var sending = false;
  var URL_RE = /https?:\/\/[^\s<>"'，。、；！？（）]+/gi;
  var TRAILING = /[.,;:!?)\]}'"]+$/;

  // The reader is at the bottom (within a line or two): only then does a new message scroll the page,
  // so a patient reading back up is not pulled down every time a reply arrives.
  function atBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
  }
  function toBottom() {
    window.scrollTo(0, document.body.scrollHeight);
    jump.hidden = true;
  }
  // Text with its web addresses as links (the same rule as the server's linkify filter).
  function linked(p, text) {
    var at = 0;
    text.replace(URL_RE, function (match, offset) {
      var url = match.replace(TRAILING, "");
      if (offset > at) { p.appendChild(document.createTextNode(text.slice(at, offset))); }
      var a = document.createElement("a");
      a.href = url; a.rel = "noopener"; a.textContent = url;
      p.appendChild(a);
      at = offset + url.length;
      return match;
    });
    if (at < text.length) { p.appendChild(document.createTextNode(text.slice(at))); }
  }

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
  function append(items, mine) {
    var follow = mine || atBottom();
    var added = 0;
    items.forEach(function (item) {
      if (list.querySelector('li[data-id="' + item.id + '"]')) { return; }
      list.querySelectorAll(".choices").forEach(function (c) { c.remove(); });
      var li = document.createElement("li");
      li.className = "msg " + (item.mine ? "mine" : "theirs") + " by-" + (item.author || "bot");
      li.dataset.id = item.id;
      if (item.by) {
        var by = document.createElement("span");
        by.className = "by"; by.textContent = item.by;
        li.appendChild(by);
      }
      var p = document.createElement("p");
      linked(p, item.text);
      li.appendChild(p);
      if (item.choices.length) {
        var box = document.createElement("div");
        box.className = "choices";
        item.choices.forEach(function (c) { box.appendChild(choiceForm(c)); });
        li.appendChild(box);
      }
      item.links.forEach(function (l) {
        var a = document.createElement("a");
        a.className = "part-link"; a.href = l.url; a.textContent = l.label;
        li.appendChild(a);
      });
      list.appendChild(li);
      added += 1;
    });
    if (!added) { return; }
    if (follow) { toBottom(); } else { jump.hidden = false; }
  }
  jump.addEventListener("click", toBottom);
  window.addEventListener("scroll", function () { if (atBottom()) { jump.hidden = true; } });
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
        append(res.body.items, true);
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
      .then(function (body) { append(body.items, false); })
      .catch(function () { /* offline for a moment: try again next tick */ });
  }
  window.setInterval(poll, 1500);
  toBottom();
})();
