/* Keyboard shortcuts of the console (listed by "?", see templates/admin/enforcement/_shortcuts.html).
   Every shortcut does what a link or button of the page does: it follows the link, clicks a harmless button
   (assign to me) or, for a decision (propose, approve), selects the button so that Enter presses it. The
   buttons post to the same views as a click, with the same confirmations. No library, no CDN. */
(function () {
  "use strict";
  var overlay = document.getElementById("shortcuts");
  if (!overlay) return;
  var page = overlay.dataset.page;

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }
  function toggleOverlay(show) {
    overlay.hidden = show === undefined ? !overlay.hidden : !show;
  }
  function follow(selector) {
    var link = document.querySelector(selector);
    if (link && link.href) { window.location.assign(link.href); return true; }
    return false;
  }
  function select(selector) {
    var button = document.querySelector(selector);
    if (!button) return false;
    button.scrollIntoView({block: "nearest"});
    button.focus();
    button.classList.add("kb-selected");
    return true;
  }

  var button = document.getElementById("shortcuts-button");
  if (button) button.addEventListener("click", function () { toggleOverlay(); });
  overlay.addEventListener("click", function (event) { if (event.target === overlay) toggleOverlay(false); });

  var comment = document.getElementById("comment-body");
  if (comment) {
    comment.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        if (comment.value.trim()) comment.form.requestSubmit();
      } else if (event.key === "Escape") {
        comment.blur();
      }
    });
  }

  /* The timeline's filters are remembered for the staff member: a change posts them (the form's own action). */
  var filters = document.getElementById("timeline-filters");
  if (filters) {
    filters.addEventListener("change", function () { filters.requestSubmit(); });
  }

  /* The queue: j/k move a selection over the rows, o or Enter opens the selected case. */
  var rows = page === "queue" ? Array.prototype.slice.call(document.querySelectorAll("#result_list tbody tr")) : [];
  var current = -1;
  function move(step) {
    if (!rows.length) return;
    if (current >= 0) rows[current].classList.remove("kb-current");
    current = Math.max(0, Math.min(rows.length - 1, current + step));
    rows[current].classList.add("kb-current");
    rows[current].scrollIntoView({block: "nearest"});
  }
  function openCurrent() {
    if (current < 0) return false;
    var link = rows[current].querySelector("th a, td a");
    if (link) { window.location.assign(link.href); return true; }
    return false;
  }

  var caseKeys = {
    j: function () { return follow("#next-case"); },
    k: function () { return follow("#previous-case"); },
    u: function () { return follow("#back-to-queue"); },
    a: function () { var b = document.getElementById("assign-me"); if (b) { b.click(); return true; } return false; },
    c: function () { if (comment) { comment.focus(); return true; } return false; },
    p: function () { return select("#propose-recommended"); },
    y: function () { return select('#decision [data-verb="approve"], #decision [data-verb="confirm"]'); },
    e: function () {
      var boxes = document.querySelectorAll("details.violation");
      var open = !Array.prototype.some.call(boxes, function (box) { return box.open; });
      boxes.forEach(function (box) { box.open = open; });
      return boxes.length > 0;
    }
  };
  var queueKeys = {
    j: function () { move(1); return true; },
    k: function () { move(-1); return true; },
    o: openCurrent,
    Enter: openCurrent,
    "/": function () { var s = document.getElementById("searchbar"); if (s) { s.focus(); s.select(); return true; } return false; }
  };
  var indexKeys = {
    q: function () { return follow("#queue-link"); }
  };
  var keys = page === "case" ? caseKeys : page === "queue" ? queueKeys : indexKeys;

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape" && !overlay.hidden) { toggleOverlay(false); return; }
    if (typing(event.target)) return;
    if (event.key === "?") { event.preventDefault(); toggleOverlay(); return; }
    if (!overlay.hidden) return;
    if (page === "index" && /^[1-9]$/.test(event.key)) {
      var view = document.querySelector('[data-view-key="' + event.key + '"]');
      if (view) { event.preventDefault(); window.location.assign(view.href); }
      return;
    }
    if (event.key === "Enter" && page !== "queue") return;  /* Enter presses the focused button itself */
    var action = Object.prototype.hasOwnProperty.call(keys, event.key) ? keys[event.key] : null;
    if (action && action()) event.preventDefault();
  });
})();
