/* Live updates by polling (no page reload) and report draft autosave. Plain JS, no dependency. */
(function () {
  "use strict";
  var POLL_MS = parseInt(document.body.getAttribute("data-poll-ms") || "3000", 10);

  function csrf() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // Any element with data-live-url is refreshed when the server's version changes.
  document.querySelectorAll("[data-live-url]").forEach(function (el) {
    var busy = false;
    function poll() {
      if (busy) return;
      // Do not replace a form the user is typing into.
      if (el.contains(document.activeElement) && /INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) return;
      busy = true;
      var u = el.getAttribute("data-live-url");
      u += (u.indexOf("?") < 0 ? "?" : "&") + "v=" + encodeURIComponent(el.getAttribute("data-version") || "");
      fetch(u, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { if (r.status === 401 || r.status === 403) { window.location.reload(); } return r.json(); })
        .then(function (data) {
          if (data.changed) { el.innerHTML = data.html; el.setAttribute("data-version", data.version); }
        })
        .catch(function () { /* offline for a moment: next poll */ })
        .finally(function () { busy = false; });
    }
    setInterval(poll, POLL_MS);
  });

  // "Read" on a worklist row: the images open in OHIF in the second window (target pds-ohif, reused by every
  // case, so it follows the case being read) and this window goes to the case page, with its report editor.
  // When OHIF is already open in that window, it is not reloaded: it is told the next case's viewer URL and moves
  // there with its own router (apps/worklist/ohif.py, _FOLLOW_JS), so only the study's data is fetched. The server
  // answers the same link in JSON, with the same audit entry and the case opened as the redirect does.
  function follows(w) {  // OHIF under our app-config.js, which listens (window.pdsViewerFollows)
    try { return w.pdsViewerFollows === true; } catch (err) { return false; }  // another origin: not ours
  }
  document.addEventListener("click", function (e) {
    var link = e.target.closest ? e.target.closest("a[target=pds-ohif]") : null;
    if (!link || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    var w = window.open("", "pds-ohif");  // the viewer window if open, else a new blank one
    if (!w) return;  // a blocker: the link's own navigation
    e.preventDefault();
    var follow = link.getAttribute("data-follow");
    function done() { if (follow) window.location.href = follow; }
    if (!follows(w)) { w.location.href = link.href; done(); return; }
    fetch(link.href, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok || (r.headers.get("Content-Type") || "").indexOf("application/json") !== 0) throw new Error(r.status);
        return r.json();
      })
      .then(function (data) {
        if (data.viewer) { w.postMessage({ pdsViewer: data.url }, window.location.origin); }
        else { w.location.href = data.url; }
      })
      .catch(function () { w.location.href = link.href; })
      .finally(function () { w.focus(); done(); });
  });

  // Report editor: autosave the draft a moment after typing stops, and on leaving a field.
  var form = document.getElementById("report-form");
  if (form) {
    var status = document.getElementById("autosave-status");
    var timer = null, lastSent = "";
    function payload() {
      var d = {};
      ["template", "indication", "technique", "findings", "conclusion"].forEach(function (n) { d[n] = form.elements[n].value; });
      d.critical_finding = form.elements.critical_finding.checked;
      return d;
    }
    function save() {
      var body = JSON.stringify(payload());
      if (body === lastSent) return;
      fetch(form.getAttribute("data-autosave-url"), {
        method: "POST", credentials: "same-origin", body: body,
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf() }
      }).then(function (r) { return r.json(); }).then(function (d) {
        if (d.ok) { lastSent = body; status.textContent = status.getAttribute("data-saved-label") + " " + d.saved_at; }
        else { status.textContent = d.error; }
      }).catch(function () { status.textContent = "…"; });
    }
    status.setAttribute("data-saved-label", document.documentElement.lang === "fr" ? "Brouillon enregistré" : "Draft saved");
    form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(save, 1500); });
    form.addEventListener("change", save);
    form.querySelector("#rep-template").addEventListener("change", function (e) {
      var opt = e.target.selectedOptions[0];
      var t = form.elements.technique, f = form.elements.findings, c = form.elements.conclusion;
      if (!t.value.trim() || window.confirm(opt.textContent + " ?")) {
        t.value = opt.getAttribute("data-technique"); f.value = opt.getAttribute("data-findings");
        if (!c.value.trim()) { c.value = opt.getAttribute("data-conclusion") || ""; }
      }
    });
  }
})();
