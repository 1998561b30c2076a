// The login page's tabs (密码登录 / 短信登录 / 一键登录). Every tab works without this file (links and plain forms);
// it switches tabs without a reload, waits out the resend interval on the 获取验证码 button, and sends on the token
// the carrier (or the demo's carrier simulator) handed back. A file, not an inline script: the CSP allows no other.
(function () {
  var script = document.currentScript;
  var card = document.getElementById("login-card");
  if (!card) { return; }
  var tabs = card.querySelectorAll("[data-tab]");
  tabs.forEach(function (tab) {
    tab.addEventListener("click", function (event) {
      event.preventDefault();
      var name = tab.getAttribute("data-tab");
      tabs.forEach(function (other) {
        var active = other === tab;
        other.classList.toggle("active", active);
        if (active) { other.setAttribute("aria-selected", "true"); } else { other.removeAttribute("aria-selected"); }
      });
      card.querySelectorAll("[data-panel]").forEach(function (panel) {
        panel.hidden = panel.getAttribute("data-panel") !== name;
      });
      if (window.history && window.history.replaceState) { window.history.replaceState(null, "", tab.href); }
    });
  });

  var send = document.getElementById("sms-send");
  var wait = send ? parseInt(send.getAttribute("data-resend-in") || "0", 10) : 0;
  if (send && wait > 0) {
    var label = send.textContent;
    var template = script.getAttribute("data-resend") || "#";  // "# 秒后重发", translated by the page
    var ends = Date.now() + wait * 1000;
    var tick = function () {
      var left = Math.ceil((ends - Date.now()) / 1000);
      if (left <= 0) { send.disabled = false; send.textContent = label; return; }
      send.disabled = true;
      send.textContent = template.replace("#", left);
      setTimeout(tick, 500);
    };
    tick();
  }

  var onetap = document.getElementById("onetap-form");
  if (onetap && onetap.getAttribute("data-autosubmit")) {
    // The token is single use and short-lived: send it on at once instead of waiting for a click.
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", window.location.pathname + "?tab=onetap");
    }
    onetap.submit();
  }
})();
