// The buy form's 支付密码 field: rendered (by web/_pin_field.html) whenever some SKU × quantity of the product
// could go over the buyer's password-free limit, and without this file simply shown with its hint. This file shows
// it only while a wallet payment of the chosen SKU's price × quantity is over the limit (data-pin-limit), so
// choosing a dearer SKU or a larger quantity brings it up before the purchase is sent. A field shown because the
// PIN was just refused (data-pin-keep) stays. A file, not an inline script: the CSP allows no other.
(function () {
  var field = document.querySelector("[data-pin-limit]");
  var form = document.getElementById("buy-form");
  if (!field || !form || field.hasAttribute("data-pin-keep")) { return; }
  var cents = function (text) {
    var value = parseFloat(text);
    return isNaN(value) ? NaN : Math.round(value * 100);
  };
  var limit = cents(field.getAttribute("data-pin-limit"));
  var quantity = form.querySelector("[name=quantity]");
  var update = function () {
    var sku = form.querySelector("input[name=sku]:checked");
    var method = form.querySelector("input[name=payment_method]:checked");
    var count = quantity ? parseInt(quantity.value, 10) : 1;
    var price = sku ? cents(sku.getAttribute("data-price")) : NaN;
    var needed = true;  // when in doubt (nothing chosen, a quantity being typed), show it
    if (method && method.value !== "balance") {
      needed = false;  // the PIN guards wallet payments only
    } else if (!isNaN(price) && !isNaN(limit) && count > 0) {
      needed = price * count > limit;
    }
    field.hidden = !needed;
  };
  form.addEventListener("change", update);
  form.addEventListener("input", update);
  update();
})();
