// The payment countdown of [data-countdown] clocks. A file rather than an inline script: the Content-Security-Policy
// runs only scripts served by this site. The word shown at zero comes from the script tag (data-over), translated.
(function () {
  var over = document.currentScript.getAttribute("data-over");
  if (!document.querySelector("[data-countdown]")) { return; }
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };
  var tick = function () {
    // Looked up on every tick: htmx swaps the status fragment that holds the clock while the buyer waits.
    document.querySelectorAll("[data-countdown]").forEach(function (clock) {
      var left = Math.floor((Date.parse(clock.getAttribute("datetime")) - Date.now()) / 1000);
      clock.textContent = left > 0 ? pad(Math.floor(left / 60)) + ":" + pad(left % 60) : over;
    });
  };
  tick();
  setInterval(tick, 1000);
})();
