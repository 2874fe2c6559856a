// The console's own script: what htmx's attributes cannot say. No inline scripts anywhere (CSP: script-src 'self').
(function () {
  "use strict";

  function cookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : null;
  }

  // Every change htmx sends carries the session's CSRF token, read fresh: signing in again (in another tab) renews it.
  document.addEventListener("htmx:configRequest", function (event) {
    var token = cookie("agora_csrf");
    if (token) { event.detail.headers["X-CSRF-Token"] = token; }
  });

  // A live region's stream says the session is over: go and sign in, then come back here.
  document.addEventListener("htmx:sseMessage", function (event) {
    if (event.detail && event.detail.type === "signed-out") {
      window.location.assign("/ui/sign-in?next=" + encodeURIComponent(location.pathname + location.search));
    }
  });
})();
