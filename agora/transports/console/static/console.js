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

// Admin · keys: copy the once-shown secret, and take it off the page once the person has it.
(function () {
  "use strict";

  function select(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.addEventListener("click", function (event) {
    var copy = event.target.closest && event.target.closest("[data-copy-from]");
    if (copy) {
      var source = document.getElementById(copy.getAttribute("data-copy-from"));
      if (!source) { return; }
      var selected = function () { select(source); copy.textContent = "Selected: press Ctrl+C"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.textContent.trim()).then(function () { copy.textContent = "Copied"; }, selected);
      } else {
        selected();
      }
      return;
    }
    var forget = event.target.closest && event.target.closest("[data-forget]");
    if (forget) {
      var panel = forget.closest("[data-secret]");
      if (panel) { panel.remove(); }
    }
  });
})();
