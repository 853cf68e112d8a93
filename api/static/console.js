// Two small helps, no library (the console works without them, only less promptly):
// - the refund page follows the refund: every few seconds it asks whether anything changed
//   and reloads when it did, unless someone is typing into a form on it (their input would
//   be lost; then it says so instead);
// - the report's chart frame grows to the chart's height (same origin), without a scrollbar;
// - a Confirm page (the answer to a form) stands in the browser's history as its refund's
//   page, so Back from what follows opens the refund, not "Confirm form resubmission" (a
//   trial met the browser's ERR_CACHE_MISS there).
(function () {
  "use strict";
  var body = document.body;
  var history_url = body.getAttribute("data-history");
  if (history_url && window.history.replaceState) {
    window.history.replaceState(null, "", history_url);
  }
  Array.prototype.forEach.call(document.querySelectorAll("iframe.chart"), function (frame) {
    frame.addEventListener("load", function () {
      var doc = frame.contentDocument;
      if (doc && doc.documentElement) {
        frame.style.height = (doc.documentElement.scrollHeight + 24) + "px";
      }
    });
  });
  var url = body.getAttribute("data-poll");
  if (!url) { return; }
  var seen = body.getAttribute("data-version");
  var typing = false;
  document.addEventListener("input", function () { typing = true; });
  function check() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) {
        if (!answer || answer.version === seen) { return; }
        if (typing) {
          var live = document.getElementById("live");
          if (live) { live.textContent = "This refund has changed (now " + answer.state + "). Reload to see it."; }
          seen = answer.version;
          return;
        }
        window.location.replace(body.getAttribute("data-page") || window.location.pathname);
      })
      .catch(function () { /* the next round tries again */ });
  }
  window.setInterval(check, 2000);
})();
