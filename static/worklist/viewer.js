/* Slice viewer: server-rendered PNGs, scrolled with the wheel and the keyboard; CT window presets. */
(function () {
  "use strict";
  var dataEl = document.getElementById("series-data");
  if (!dataEl) return;
  var series = JSON.parse(dataEl.textContent);
  var viewport = document.getElementById("viewport");
  var img = document.getElementById("slice");
  var pos = document.getElementById("slice-pos");
  var base = viewport.getAttribute("data-slice-url").replace(/0\.png$/, "");
  var current = series[0], index = 0, preset = "";
  var cache = {};

  function url(id) { return base + id + ".png" + (preset ? "?preset=" + encodeURIComponent(preset) : ""); }
  function prefetch(i) {
    var id = current.instances[i];
    if (id === undefined) return;
    var key = url(id);
    if (!cache[key]) { var p = new Image(); p.src = key; cache[key] = p; }
  }
  function show() {
    if (!current.instances.length) { pos.textContent = "0 / 0"; img.removeAttribute("src"); return; }
    index = Math.max(0, Math.min(index, current.instances.length - 1));
    img.src = url(current.instances[index]);
    img.setAttribute("data-instance", current.instances[index]);
    pos.textContent = current.label + " – " + (index + 1) + " / " + current.instances.length + (preset ? " – " + preset : "");
    prefetch(index + 1); prefetch(index - 1);
  }
  function press(selector, el) {
    document.querySelectorAll(selector).forEach(function (b) { b.setAttribute("aria-pressed", b === el ? "true" : "false"); });
  }
  document.querySelectorAll("[data-series]").forEach(function (b) {
    b.addEventListener("click", function () {
      current = series.find(function (s) { return String(s.id) === b.getAttribute("data-series"); });
      index = Math.floor(current.instances.length / 2); press("[data-series]", b); show(); viewport.focus();
    });
  });
  var presetButtons = document.querySelectorAll("[data-preset]");
  presetButtons.forEach(function (b) {
    b.addEventListener("click", function () { preset = b.getAttribute("data-preset"); press("[data-preset]", b); show(); });
  });
  viewport.addEventListener("wheel", function (e) { e.preventDefault(); index += e.deltaY > 0 ? 1 : -1; show(); }, { passive: false });
  document.addEventListener("keydown", function (e) {
    if (/INPUT|TEXTAREA|SELECT/.test(e.target.tagName)) return;
    var step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1, PageDown: 10, PageUp: -10 }[e.key];
    if (step) { e.preventDefault(); index += step; show(); return; }
    if (e.key === "Home") { index = 0; show(); return; }
    if (e.key === "End") { index = current.instances.length - 1; show(); return; }
    var n = parseInt(e.key, 10);
    if (!isNaN(n) && presetButtons[n]) { presetButtons[n].click(); }
  });
  index = Math.floor(current.instances.length / 2);
  show();
})();
