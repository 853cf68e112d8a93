// The refund page follows the refund: every few seconds it asks whether anything changed
// and reloads when it did, unless someone is typing into a form on it (their input would
// be lost). No library: the console works without it, only less promptly.
(function () {
  "use strict";
  var body = document.body;
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
