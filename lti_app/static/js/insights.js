// Dashboard grid: one tab stop for the whole grid, then the arrow keys move between cells
// (Home/End: row ends; Ctrl+Home/End: first/last cell). Enter or Space opens the evidence.
(function () {
  "use strict";
  var table = document.querySelector("table.grid");
  if (!table) { return; }
  var rows = Array.prototype.map.call(table.tBodies[0].rows, function (tr) {
    return tr.querySelectorAll("button");
  });
  if (!rows.length || !rows[0].length) { return; }
  var current = rows[0][0];
  rows.forEach(function (buttons) {
    Array.prototype.forEach.call(buttons, function (b) { b.tabIndex = -1; });
  });
  current.tabIndex = 0;
  function move(r, c) {
    r = Math.max(0, Math.min(rows.length - 1, r));
    c = Math.max(0, Math.min(rows[r].length - 1, c));
    var next = rows[r][c];
    current.tabIndex = -1;
    next.tabIndex = 0;
    current = next;
    next.focus();
  }
  table.addEventListener("keydown", function (event) {
    var button = event.target.closest("button");
    if (!button) { return; }
    var td = button.parentElement;
    var tr = td.parentElement;
    var r = tr.sectionRowIndex;
    var c = Array.prototype.indexOf.call(rows[r], button);
    var handled = true;
    switch (event.key) {
      case "ArrowRight": move(r, c + 1); break;
      case "ArrowLeft": move(r, c - 1); break;
      case "ArrowDown": move(r + 1, c); break;
      case "ArrowUp": move(r - 1, c); break;
      case "Home": move(event.ctrlKey ? 0 : r, 0); break;
      case "End": move(event.ctrlKey ? rows.length - 1 : r, rows[r].length - 1); break;
      case "PageDown": move(r + 10, c); break;
      case "PageUp": move(r - 10, c); break;
      default: handled = false;
    }
    if (handled) { event.preventDefault(); }
  });
  table.addEventListener("focusin", function (event) {
    var button = event.target.closest("button");
    if (button && button !== current) {
      current.tabIndex = -1; button.tabIndex = 0; current = button;
    }
  });
})();
