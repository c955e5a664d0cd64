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

// Keyboard shortcuts (j/k next/previous, c claim, r reply, x close, ? help) and canned replies in the reply
// box (buttons, or "/" at the start of a line). Every action also has a link or a button that works without
// JavaScript; shortcuts never fire while the user is typing in a field.
(function () {
  "use strict";
  var help = document.getElementById("shortcut-help");
  document.querySelectorAll("[data-shortcut-help]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { openHelp(); });
  });

  function openHelp() {
    if (!help) return;
    if (typeof help.showModal === "function") { if (!help.open) help.showModal(); } else { help.setAttribute("open", ""); }
  }

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function go(id) {
    var link = document.getElementById(id);
    if (link) { window.location.href = link.href; return true; }
    return false;
  }

  // On the inbox table, j/k move the focus between the rows' patient links; Enter opens one.
  function moveInList(step) {
    var links = Array.prototype.slice.call(document.querySelectorAll("#tasks tbody tr[data-task] td:nth-child(3) a"));
    if (!links.length) return false;
    var at = links.indexOf(document.activeElement);
    var next = at < 0 ? (step > 0 ? 0 : links.length - 1) : Math.min(Math.max(at + step, 0), links.length - 1);
    links[next].focus();
    return true;
  }

  function submitAction(name) {
    var form = document.querySelector('form[action$="/' + name + '"]');
    if (!form) return false;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape" && event.target.id !== "reply-text") event.target.blur();
      return;
    }
    var done = false;
    switch (event.key) {
      case "?": openHelp(); done = true; break;
      case "j": done = go("next-task") || moveInList(1); break;
      case "k": done = go("previous-task") || moveInList(-1); break;
      case "c": done = submitAction("claim"); break;
      case "r":
        var box = document.getElementById("reply-text");
        if (box) { box.focus(); box.scrollIntoView({ block: "center" }); done = true; }
        break;
      case "x":
        var code = document.getElementById("close-code");
        if (code) { code.focus(); code.scrollIntoView({ block: "center" }); done = true; }
        break;
    }
    if (done) event.preventDefault();
  });

  // --- canned replies in the reply box --------------------------------------------------------------
  var box = document.getElementById("reply-text");
  var inline = document.getElementById("canned-inline");
  var menu = document.getElementById("canned-menu");
  var select = document.querySelector(".canned-select");
  if (!box || !inline || !menu) return;
  inline.hidden = false;
  if (select) select.hidden = true;  // the buttons replace it; without JavaScript it sends a canned reply as is
  var slashAt = -1;  // where the "/" that opened the menu sits, while the menu is open

  function insert(text, from, to) {
    var value = box.value;
    box.value = value.slice(0, from) + text + value.slice(to);
    var caret = from + text.length;
    box.focus();
    box.setSelectionRange(caret, caret);
  }

  inline.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-text]");
    if (!button) return;
    insert(button.getAttribute("data-text"), box.selectionStart, box.selectionEnd);
  });

  function options() {
    return Array.prototype.slice.call(menu.querySelectorAll("li[role=option]")).filter(function (li) { return !li.hidden; });
  }

  function choose(li) {
    menu.querySelectorAll("li[role=option]").forEach(function (o) { o.setAttribute("aria-selected", o === li ? "true" : "false"); });
    if (li) box.setAttribute("aria-activedescendant", li.id); else box.removeAttribute("aria-activedescendant");
  }

  function closeMenu() {
    menu.hidden = true;
    slashAt = -1;
    box.removeAttribute("aria-activedescendant");
  }

  function pick(li) {
    insert(li.getAttribute("data-text"), slashAt, box.selectionStart);
    closeMenu();
  }

  box.addEventListener("input", function () {
    var before = box.value.slice(0, box.selectionStart);
    var match = /(^|\n)\/([^\s\/]*)$/.exec(before);
    if (!match) { closeMenu(); return; }
    slashAt = before.length - match[2].length - 1;
    var query = match[2].toLowerCase();
    menu.querySelectorAll("li[role=option]").forEach(function (li) {
      li.hidden = query !== "" && li.getAttribute("data-label").toLowerCase().indexOf(query) < 0;
    });
    var shown = options();
    menu.hidden = shown.length === 0;
    choose(shown[0] || null);
  });

  box.addEventListener("keydown", function (event) {
    if (menu.hidden) {
      if (event.key === "Escape") box.blur();
      return;
    }
    var shown = options();
    var current = menu.querySelector('li[aria-selected="true"]');
    var at = shown.indexOf(current);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      var step = event.key === "ArrowDown" ? 1 : -1;
      choose(shown[(at + step + shown.length) % shown.length]);
      event.preventDefault();
    } else if (event.key === "Enter" || event.key === "Tab") {
      if (current) { pick(current); event.preventDefault(); }
    } else if (event.key === "Escape") {
      closeMenu();
      event.preventDefault();
    }
  });

  menu.addEventListener("mousedown", function (event) {
    var li = event.target.closest("li[role=option]");
    if (li) { event.preventDefault(); pick(li); }
  });
})();
