// The funnel's "opened" step. Loading the page records nothing: link scanners fetch links, and
// some run their scripts in a headless browser. So the page tells the server only after a
// person's first touch, click, key or wheel (real input, not a script's) while the page is
// visible, once per page load; the server keeps the first time. Without JavaScript an answer
// or a decline still counts as opened.
"use strict";
(function () {
  var form = document.querySelector("form.survey");
  if (!form) { return; }
  var url = form.getAttribute("action") + "/opened";
  var signals = ["pointerdown", "keydown", "touchstart", "wheel"];
  var sent = false;
  function opened(event) {
    // isTrusted: the browser's own input, not an event a script made up
    if (sent || !event.isTrusted || document.visibilityState !== "visible") { return; }
    sent = true;
    signals.forEach(function (name) { document.removeEventListener(name, opened, true); });
    if (!(navigator.sendBeacon && navigator.sendBeacon(url))) {
      fetch(url, { method: "POST", keepalive: true, credentials: "same-origin" })
        .catch(function () { return null; });
    }
  }
  signals.forEach(function (name) {
    document.addEventListener(name, opened, { capture: true, passive: true });
  });
})();
