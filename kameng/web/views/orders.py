"""The buyer's orders: list, detail with timeline and delivered keys, TXT export, pay (wallet balance or any
enabled channel, with a QR pay page for scan-to-pay channels), cancel."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh

from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.core.http import client_address
from kameng.core.money import ZERO
from kameng.inventory.selectors import secrets_for_order
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.selectors import order_of_buyer, order_timeline, orders_of_buyer
from kameng.orders.services import order_cancel, order_pay_with_wallet
from kameng.orders.state import IN_PROGRESS, KEYS_VISIBLE, UNPAID
from kameng.payments.models import Payment, PaymentPurpose, PaymentStatus
from kameng.payments.selectors import (
    payment_of_user,
    payment_qr_pending_for_order,
    payments_closed_for_order,
    payments_succeeded_for_order,
)
from kameng.payments.services import payment_notification_process
from kameng.web.errors import handles_application_errors, rejected
from kameng.web.http import BuyerRequest
from kameng.web.views.paying import (
    gateway_response,
    is_wallet_method,
    payment_methods,
    simulator_link,
    start_order_payment,
)

ORDERS_PER_PAGE = 20


def _own_order(request: BuyerRequest, number: str) -> Order:
    order = order_of_buyer(buyer_id=request.user.pk, number=number)
    if order is None:
        raise NotFoundError("订单不存在", code="order_not_found")
    return order


def _detail_context(order: Order) -> dict[str, object]:
    is_pending = order.status == OrderStatus.PENDING_PAYMENT
    balance = wallet_balance(user_id=order.buyer_id) if is_pending else None
    return {
        "balance": balance,
        # What the wallet lacks to pay this order: the top-up link asks for exactly that.
        "shortfall": max(order.total_amount - balance, ZERO) if balance is not None else ZERO,
        "page_url": reverse("web:order_detail", args=[order.number]),
        "order": order,
        "events": list(order_timeline(order_id=order.pk)),
        "secrets": secrets_for_order(order_id=order.pk) if order.status in KEYS_VISIBLE else [],
        "is_pending": is_pending,
        "is_in_progress": order.status in IN_PROGRESS,
        "payment_methods": payment_methods(amount=order.total_amount) if is_pending else [],
        "qr_payment": payment_qr_pending_for_order(order_id=order.pk) if is_pending else None,
        # Paid at a gateway but the order could not take it (closed meanwhile, sold out): said plainly on the page.
        "payments_in_wallet": list(payments_succeeded_for_order(order_id=order.pk)) if order.status in UNPAID else [],
        # Started and never paid, closed since the order closed: their QR codes can no longer be paid.
        "payments_closed": list(payments_closed_for_order(order_id=order.pk)) if order.status in UNPAID else [],
    }


@require_GET
@login_required
def order_list(request: BuyerRequest) -> HttpResponse:
    page = Paginator(orders_of_buyer(buyer_id=request.user.pk), ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "web/order_list.html", {"page": page})


@require_GET
@never_cache  # the page shows card secrets: no browser or proxy copy
@login_required
@handles_application_errors
def order_detail(request: BuyerRequest, number: str) -> HttpResponse:
    order = _own_order(request, number)
    if request.GET.get("out_trade_no") and request.GET.get("sign"):
        return _gateway_return(request, order)
    return render(request, "web/order_detail.html", _detail_context(order))


def _gateway_return(request: BuyerRequest, order: Order) -> HttpResponse:
    """The gateway sends the buyer back here with a signed query (epay): apply it like a notification (idempotent),
    so a buyer whose notification got lost still gets the keys (or, the payment closed meanwhile, the money in the
    wallet), then show the clean order page."""
    params = request.GET.dict()
    payment = payment_of_user(user_id=request.user.pk, number=params["out_trade_no"])
    if payment is not None and payment.order_id == order.pk and payment.status != PaymentStatus.SUCCEEDED:
        payment_notification_process(channel_code=payment.channel.code, params=params,
                                     remote_addr=client_address(request) or None)
    return redirect("web:order_detail", number=order.number)


@require_GET
@login_required
@handles_application_errors
def order_status(request: BuyerRequest, number: str) -> HttpResponse:
    """htmx polling target: the status badge while the order is in progress; a page refresh once it moved on."""
    order = _own_order(request, number)
    if request.htmx and request.GET.get("was") and request.GET["was"] != order.status:
        return HttpResponseClientRefresh()
    return render(request, "web/_order_status.html", {"order": order,
                                                      "is_in_progress": order.status in IN_PROGRESS})


@require_GET
@login_required
@handles_application_errors
def order_keys_txt(request: BuyerRequest, number: str) -> HttpResponse:
    order = _own_order(request, number)
    if order.status not in KEYS_VISIBLE:
        if order.status in IN_PROGRESS:
            raise ConflictError("订单尚未发货，暂无卡密", code="not_delivered")
        raise ConflictError("订单当前状态为「%(status)s」，没有可下载的卡密", code="no_keys",
                            params={"status": order.get_status_display()})
    secrets = secrets_for_order(order_id=order.pk)
    response = HttpResponse("".join(f"{secret}\n" for secret in secrets), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{order.number}.txt"'
    patch_cache_control(response, no_store=True, private=True)
    return response


@require_POST
@login_required
@handles_application_errors
def order_pay(request: BuyerRequest, number: str) -> HttpResponse:
    """Pay a pending order: from the wallet (no channel, or "balance"), or with the posted channel."""
    order = _own_order(request, number)
    channel_code = request.POST.get("channel", "")[:40]
    try:
        if not is_wallet_method(channel_code):
            return gateway_response(request, start_order_payment(request, order=order, channel_code=channel_code))
        order_pay_with_wallet(order_id=order.pk, buyer_id=request.user.pk)
    except ApplicationError as error:
        order.refresh_from_db()
        return rejected(request, "web/order_detail.html", _detail_context(order), error)
    messages.success(request, _("支付成功，卡密已发放"))
    return redirect("web:order_detail", number=order.number)


def _own_order_payment(request: BuyerRequest, order: Order, payment_number: str) -> Payment:
    payment = payment_of_user(user_id=request.user.pk, number=payment_number)
    if payment is None or payment.order_id != order.pk or payment.purpose != PaymentPurpose.ORDER:
        raise NotFoundError("支付单不存在", code="payment_not_found")
    return payment


@require_GET
@never_cache  # shows the keys once paid
@login_required
@handles_application_errors
def order_payment(request: BuyerRequest, number: str, payment_number: str) -> HttpResponse:
    """The QR pay page of one payment of an order; its status block polls itself (htmx) until the order moves on,
    then shows the delivered keys."""
    order = _own_order(request, number)
    payment = _own_order_payment(request, order, payment_number)
    is_waiting = order.status == OrderStatus.PENDING_PAYMENT and payment.status == PaymentStatus.PENDING
    context = {
        "order": order, "payment": payment, "is_waiting": is_waiting,
        "is_polling": is_waiting or order.status in IN_PROGRESS - {OrderStatus.PENDING_PAYMENT},
        "secrets": secrets_for_order(order_id=order.pk) if order.status in KEYS_VISIBLE else [],
        "in_wallet": payment.status == PaymentStatus.SUCCEEDED and order.status in UNPAID,
        "simulator_link": simulator_link(payment.qr_code),
    }
    template = "web/_order_payment_status.html" if request.htmx else "web/order_payment.html"
    return render(request, template, context)



@require_POST
@login_required
@handles_application_errors
def order_cancel_view(request: BuyerRequest, number: str) -> HttpResponse:
    order = _own_order(request, number)
    try:
        order_cancel(order_id=order.pk, buyer_id=request.user.pk)
    except ApplicationError as error:
        order.refresh_from_db()
        return rejected(request, "web/order_detail.html", _detail_context(order), error)
    messages.success(request, _("订单已取消"))
    return redirect("web:order_detail", number=order.number)
