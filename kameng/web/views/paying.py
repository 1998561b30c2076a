"""Paying an order with a channel, shared by the buy form and the pending order's page.

The wallet balance ("balance") pays at once; any other enabled channel gets a payment through
`kameng.payments.services.order_payment_start`, and the buyer is sent to the gateway (redirect or form) or to the
order's QR pay page. A new order's channel is checked by the purchase service (kameng.purchases) before the order
exists; the payment service checks it again (it is the authority).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from kameng.accounts.models import User
from kameng.accounts.paypin import effective_password_free_limit, pin_settings_of
from kameng.catalog.models import DeliveryKind
from kameng.core.http import client_address
from kameng.core.money import ZERO, format_money
from kameng.orders.models import Order
from kameng.payments.selectors import channels_offered
from kameng.payments.services import OrderPaymentStarted, channel_shows_qr, order_payment_start

# The payment-method value of the wallet balance on the storefront forms (a channel of kind "balance" pays the
# same way, so it is not listed twice).
WALLET_METHOD = "balance"


@dataclass(frozen=True)
class PaymentMethod:
    code: str
    name: str
    is_qr: bool = False


def payment_methods(*, amount: Decimal) -> list[PaymentMethod]:
    """The wallet balance first, then every usable gateway channel that accepts `amount`."""
    return [PaymentMethod(WALLET_METHOD, _("钱包余额")), *(
        PaymentMethod(channel.code, channel.name, channel_shows_qr(channel))
        for channel in channels_offered(amount=amount)
    )]


# The payment PIN's field on the storefront's wallet payments (the buy form, an order's pay buttons).
PIN_FIELD = "pin"


def posted_pin(request: HttpRequest) -> str | None:
    return request.POST.get(PIN_FIELD, "").strip()[:32] or None


def pin_context(user: User | None, *, amount: Decimal, most: Decimal | None = None) -> dict[str, object]:
    """Whether a wallet payment of `amount` shows the PIN field (the buyer has a PIN and the amount is over their
    password-free limit; a refusal of the PIN shows it too, see web/_pin_field.html), and what it says.

    A form whose total the buyer still chooses (the buy form: SKU × quantity) passes `most`, the highest total it
    can reach: the field is then rendered whenever that total needs the PIN, with the limit as `pin_limit`, and
    web/buy-form.js shows it only while the chosen total is over the limit (without JavaScript it stays shown,
    its hint saying when it is needed)."""
    if user is None or not user.is_authenticated:
        return {"pin_field": False}
    pin_settings = pin_settings_of(user)
    limit = effective_password_free_limit(pin_settings.password_free_limit)
    hint = (_("钱包支付超过免密额度 %(limit)s 时需要输入支付密码") % {"limit": format_money(limit)} if limit > ZERO
            else _("钱包支付需要输入 6 位支付密码"))
    if most is None:
        return {"pin_field": pin_settings.needs_pin(amount), "pin_hint": hint}
    return {"pin_field": pin_settings.needs_pin(max(amount, most)), "pin_hint": hint,
            "pin_limit": f"{limit:.2f}" if limit > ZERO else ""}


def is_wallet_method(code: str) -> bool:
    return code in ("", WALLET_METHOD)


def start_order_payment(request: HttpRequest, *, order: Order, channel_code: str,
                        is_second_payment_confirmed: bool = False) -> OrderPaymentStarted:
    assert request.user.pk is not None
    return order_payment_start(order_id=order.pk, buyer_id=request.user.pk, channel_code=channel_code,
                               client_ip=client_address(request),
                               is_second_payment_confirmed=is_second_payment_confirmed, pin=posted_pin(request))


def paid_message(order: Order, default: str) -> str:
    """What the buyer is told once an order is paid: a direct top-up is not delivered yet but under way."""
    if order.sku.product.delivery_kind == DeliveryKind.DIRECT_TOPUP:
        return _("支付成功，正在为您充值，可在订单页查看进度")
    return default


def gateway_response(request: HttpRequest, started: OrderPaymentStarted) -> HttpResponse:
    """Where the buyer goes once a payment started: paid (balance), the gateway, or the QR pay page."""
    order = started.order
    if started.payment is None:
        messages.success(request, paid_message(order, _("支付成功，卡密已发放")))
        return redirect("web:order_detail", number=order.number)
    if started.start.redirect_url:
        return redirect(started.start.redirect_url)
    if started.start.html:  # a self-submitting form the gateway built (its own markup, shown as is)
        return render(request, "web/gateway_form.html",
                      {"html": started.start.html, "back_url": reverse("web:order_detail", args=[order.number])})
    return redirect("web:order_payment", number=order.number, payment_number=started.payment.number)


def redirect_to_payment_return(request: HttpRequest) -> HttpResponse:
    """On to payments' return handler (kameng.payments.views.payment_return) with the gateway's query as is."""
    query = request.META.get("QUERY_STRING", "")
    return HttpResponseRedirect(reverse("payments:return") + (f"?{query}" if query else ""))


def simulator_link(qr_code: str) -> str:
    """In the demo the simulators' QR payload is a page of this site: offer it as a link too (no phone needed)."""
    if settings.KAMENG_SIMULATORS_ENABLED and qr_code.startswith(("http://", "https://")):
        return qr_code
    return ""
