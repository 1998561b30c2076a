// "Copy" buttons ([data-copy]) of card keys. The word shown once copied comes from the script tag (data-copied).
(function () {
  var copied = document.currentScript.getAttribute("data-copied");
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var text = button.getAttribute("data-copy");
    var done = function () {
      var label = button.textContent;
      button.textContent = copied;
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      var area = document.createElement("textarea");
      area.value = text; document.body.appendChild(area); area.select();
      document.execCommand("copy"); document.body.removeChild(area); done();
    }
  });
})();
