/* Behaviour every page shares, kept out of the HTML: the Content-Security-Policy allows no inline script
   and no on*= attribute. Plain JS, no dependency. */
(function () {
  "use strict";
  // <select data-autosubmit>: choosing an option submits its form (language switch, worklist filters).
  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el && el.matches && el.matches("select[data-autosubmit]") && el.form) { el.form.submit(); }
  });
  // [data-focus-on-load]: the form's error summary takes the focus, so a screen reader reads it and a keyboard
  // user starts from it (autofocus alone does not reach an element that is not a form control everywhere).
  document.addEventListener("DOMContentLoaded", function () {
    var target = document.querySelector("[data-focus-on-load]");
    if (target && document.activeElement !== target) { target.focus(); }
  });
  // <form data-submit-once>: a double click sends one request; the submit buttons are disabled after the
  // first submit (after the event, so that the clicked button's name/value is still sent).
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form || !form.hasAttribute || !form.hasAttribute("data-submit-once")) return;
    setTimeout(function () {
      form.querySelectorAll("button[type=submit], input[type=submit]").forEach(function (b) { b.disabled = true; });
    }, 0);
  });
})();
