// Warden dashboard: the little script the pages need beyond htmx.
// Served from this origin only (the CSP allows no inline script).
(function () {
  "use strict";
  // A login link carries the token in its fragment (#token=...), which
  // browsers never send to a server: move it into the sign-in form and
  // drop it from the address bar and history. It is never submitted by
  // itself: the page says whom the link signs in as and waits for the
  // person to confirm, so a link planted by someone else cannot silently
  // swap the session for theirs.
  function subjectOf(token) {
    try {
      var part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part)).sub || "";
    } catch (e) {
      return "";
    }
  }
  function signInFromFragment() {
    var form = document.getElementById("login-form");
    if (!form || !location.hash) return;
    var params = new URLSearchParams(location.hash.slice(1));
    var token = params.get("token");
    if (!token) return;
    history.replaceState(null, "", location.pathname);
    form.querySelector("textarea[name=token]").value = token;
    var note = document.getElementById("link-note");
    var who = subjectOf(token);
    if (note) {
      note.textContent = who
        ? "This login link signs you in as " + who + ". Sign in to continue as " + who + "."
        : "This login link carries a token. Sign in to continue.";
      note.hidden = false;
    }
    var button = form.querySelector("button[type=submit]");
    if (button) button.focus();
  }
  // After an htmx swap, move focus to a swapped region that asks for it,
  // so keyboard and screen-reader users land on the new content.
  function focusSwapped(event) {
    var target = event.detail && event.detail.target;
    if (!target) return;
    var wanted = target.querySelector("[data-focus]");
    if (wanted) wanted.focus();
  }
  document.addEventListener("DOMContentLoaded", signInFromFragment);
  document.addEventListener("htmx:afterSwap", focusSwapped);
})();
