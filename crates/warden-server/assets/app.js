// Warden dashboard: the little script the pages need beyond htmx.
// Served from this origin only (the CSP allows no inline script).
(function () {
  "use strict";
  // A login link carries the token in its fragment (#token=...), which
  // browsers never send to a server: move it into the sign-in form, drop
  // it from the address bar and history, and submit.
  function signInFromFragment() {
    var form = document.getElementById("login-form");
    if (!form || !location.hash) return;
    var params = new URLSearchParams(location.hash.slice(1));
    var token = params.get("token");
    if (!token) return;
    history.replaceState(null, "", location.pathname);
    form.querySelector("textarea[name=token]").value = token;
    form.submit();
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
