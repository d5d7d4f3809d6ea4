/* Kaifang 开放 — small page helpers, no dependencies.
   (a) 长辈模式 toggle: [data-toggle-elder] toggles html.elder, kept in localStorage "kf-elder".
   (b) HTMX requests carry X-CSRF-Token from <meta name="csrf-token">.
   (c) [data-confirm] on forms, buttons and links asks confirm() first.
   (d) HTMX request failures are shown in #kf-ajax-error in plain words. */
(function () {
  "use strict";

  var ELDER_KEY = "kf-elder";
  var root = document.documentElement;

  function storedElder() {
    try { return window.localStorage.getItem(ELDER_KEY) === "1"; } catch (e) { return false; }
  }

  function syncElderButtons() {
    var on = root.classList.contains("elder");
    var buttons = document.querySelectorAll("[data-toggle-elder]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].setAttribute("aria-pressed", on ? "true" : "false");
    }
  }

  function setElder(on) {
    root.classList.toggle("elder", on);
    try {
      if (on) { window.localStorage.setItem(ELDER_KEY, "1"); }
      else { window.localStorage.removeItem(ELDER_KEY); }
    } catch (e) { /* storage disabled: the mode lasts for this page only */ }
    syncElderButtons();
  }

  // Apply as early as this script runs (base.html also applies it inline in <head>).
  if (storedElder()) { root.classList.add("elder"); }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function ask(el) {
    var message = el.getAttribute("data-confirm");
    return !message || window.confirm(message);
  }

  // Clicks: elder toggle, and data-confirm on buttons/links (capture phase, so a
  // cancelled confirm also stops htmx handlers on the element itself).
  document.addEventListener("click", function (evt) {
    var target = evt.target;
    if (!target || !target.closest) { return; }
    var toggle = target.closest("[data-toggle-elder]");
    if (toggle) {
      evt.preventDefault();
      setElder(!root.classList.contains("elder"));
      return;
    }
    var confirmEl = target.closest("button[data-confirm], input[data-confirm], a[data-confirm]");
    if (confirmEl && !confirmEl.disabled) {
      if (!ask(confirmEl)) {
        evt.preventDefault();
        evt.stopPropagation();
      } else if (confirmEl.form) {
        confirmEl.form.setAttribute("data-kf-confirmed", "1");
      }
    }
  }, true);

  // Form submit: data-confirm on the form itself (skipped when the submit
  // button already asked).
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (!form || !form.hasAttribute || !form.hasAttribute("data-confirm")) { return; }
    if (form.getAttribute("data-kf-confirmed") === "1") {
      form.removeAttribute("data-kf-confirmed");
      return;
    }
    if (!ask(form)) {
      evt.preventDefault();
      evt.stopPropagation();
    }
  }, true);

  // HTMX: CSRF header on every request.
  document.addEventListener("htmx:configRequest", function (evt) {
    var token = csrfToken();
    if (token && evt.detail && evt.detail.headers) {
      evt.detail.headers["X-CSRF-Token"] = token;
    }
  });

  // HTMX: tell the user when a request failed, in the page's own words.
  function showAjaxError(kind) {
    var box = document.getElementById("kf-ajax-error");
    if (!box) { return; }
    var text = box.getAttribute(kind === "network" ? "data-msg-network" : "data-msg-server");
    if (text) { box.textContent = text; }
    box.hidden = false;
  }
  function hideAjaxError() {
    var box = document.getElementById("kf-ajax-error");
    if (box) { box.hidden = true; }
  }
  document.addEventListener("htmx:sendError", function () { showAjaxError("network"); });
  document.addEventListener("htmx:timeout", function () { showAjaxError("network"); });
  document.addEventListener("htmx:responseError", function () { showAjaxError("server"); });
  document.addEventListener("htmx:beforeRequest", hideAjaxError);

  // Buttons swapped in by htmx get the right aria-pressed too.
  document.addEventListener("htmx:afterSettle", syncElderButtons);

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", syncElderButtons);
  } else {
    syncElderButtons();
  }
})();
