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

  // A filter form searches as you type and again on "change", which fires when the search box loses the focus: when a
  // person presses the mouse on a result. Run again, that search would swap the list under the pointer before the
  // button comes up, and the click would land on nothing. A search for exactly what the page already shows is not
  // sent (the Find button still refreshes).
  document.addEventListener("htmx:configRequest", function (event) {
    var detail = event.detail;
    if (detail.verb !== "get" || !detail.elt.matches("form[hx-push-url]") || detail.path !== location.pathname
        || (detail.triggeringEvent && detail.triggeringEvent.type === "submit")) { return; }
    var asked = new URLSearchParams(detail.formData);
    var shown = new URLSearchParams(location.search);
    asked.sort();
    shown.sort();
    if (asked.toString() === shown.toString()) { event.preventDefault(); }
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

// Ask: Enter sends (Shift+Enter makes a new line); after an answer the box is emptied and the answer brought into view.
(function () {
  "use strict";

  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (box && box.id === "ask-message" && event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (box.value.trim()) { box.form.requestSubmit(); }
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (!form || form.id !== "ask-form" || !event.detail.successful) { return; }
    form.querySelector("#ask-message").value = "";
    var turns = document.getElementById("ask-turns");
    if (turns && turns.lastElementChild) { turns.lastElementChild.scrollIntoView({ block: "nearest" }); }
  });

  // A conversation's next turn, once sent, leaves the box empty for the one after it (the thread shows it).
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.id === "conversation-form" && event.detail.successful) { form.reset(); }
  });
})();
