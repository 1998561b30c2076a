"""The buyer's orders: list, detail with timeline and delivered keys, TXT export, pay (wallet balance or any
enabled channel, with a QR pay page for scan-to-pay channels), cancel."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRefresh

from kameng.accounts.models import User
from kameng.accounts.paypin import pin_settings_of
from kameng.after_sales.selectors import after_sales_requests_of_order
from kameng.after_sales.services import REQUESTABLE as AFTER_SALES_REQUESTABLE
from kameng.after_sales.services import after_sales_deadline, after_sales_refusal
from kameng.catalog.models import DeliveryKind
from kameng.catalog.topup_forms import topup_target_summary
from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.core.money import ZERO
from kameng.inventory.selectors import secrets_for_order
from kameng.ledger.selectors import wallet_balance
from kameng.orders.fulfilment import order_awaits_staff
from kameng.orders.models import Order, OrderEvent, OrderStatus
from kameng.orders.selectors import (
    order_last_event_id,
    order_of_buyer,
    order_timeline,
    order_topup_target_lines,
    orders_of_buyer,
)
from kameng.orders.services import order_cancel
from kameng.orders.state import IN_PROGRESS, KEYS_VISIBLE, UNPAID
from kameng.payments.models import Payment, PaymentPurpose, PaymentStatus
from kameng.payments.selectors import (
    orders_with_payment_in_flight,
    payment_in_flight_for_order,
    payment_of_user,
    payment_qr_pending_for_order,
    payments_closed_for_order,
    payments_succeeded_for_order,
)
from kameng.payments.services import PaymentInFlightError, order_pay_from_wallet
from kameng.points.selectors import order_points_summary
from kameng.web.errors import handles_application_errors, message_for, rejected, status_for
from kameng.web.http import BuyerRequest
from kameng.web.topup_progress import STEP_EVENT_KINDS, is_topup_credited, topup_progress
from kameng.web.views.paying import (
    PIN_FIELD,
    gateway_response,
    is_wallet_method,
    paid_message,
    payment_methods,
    pin_context,
    posted_pin,
    redirect_to_payment_return,
    simulator_link,
    start_order_payment,
)

ORDERS_PER_PAGE = 20
# The field a buyer's confirmation adds to a payment posted while another payment of the order is in flight.
CONFIRM_SECOND_PAYMENT = "confirm_second_payment"
# How often an order page's status badge asks again: every few seconds while the order moves by itself (keys
# being delivered, a gateway payment being confirmed); slower while it waits for staff, which can take hours.
STATUS_POLL_SECONDS = 3
STATUS_POLL_SECONDS_AWAITING_STAFF = 30
# A direct top-up's progress block: the steps move within seconds of each other at a carrier.
TOPUP_POLL_SECONDS = 2


def _is_direct_topup(order: Order) -> bool:
    return order.sku.product.delivery_kind == DeliveryKind.DIRECT_TOPUP


def _status_badge_context(order: Order) -> dict[str, object]:
    """What the status badge (web/_order_status.html) shows, and whether and how often it polls. A paid direct
    top-up's badge does not poll: its progress block does, and swaps the badge in place (no reload)."""
    is_pending = order.status == OrderStatus.PENDING_PAYMENT
    is_topup = _is_direct_topup(order)
    awaits_staff = order_awaits_staff(order=order) and not is_topup
    is_in_progress = order.status in IN_PROGRESS
    return {
        "order": order,
        "is_in_progress": is_in_progress,
        "is_polling": is_in_progress and not (is_topup and order.paid_at is not None),
        # The newest timeline line the page shows: a line added without a change of status (a note, keys taken
        # over) refreshes the page too.
        "last_event_id": order_last_event_id(order_id=order.pk) if is_in_progress else None,
        # Paid, made by hand: the badge says 等待人工发货 rather than a bare 已支付 / 发货中.
        "awaits_staff": awaits_staff,
        # A gateway payment under way (the buyer may just have paid it): the page says 正在确认支付 and polls, and
        # paying another way asks first (order_pay).
        "payment_in_flight": payment_in_flight_for_order(order_id=order.pk) if is_pending else None,
        "poll_seconds": STATUS_POLL_SECONDS_AWAITING_STAFF if awaits_staff else STATUS_POLL_SECONDS,
        "is_credited": is_topup_credited(order),  # a delivered direct top-up: 已到账, not 已发货
    }


def own_order(request: BuyerRequest, number: str) -> Order:
    """The buyer's own order, or 404 (another buyer's order is not found, never forbidden)."""
    order = order_of_buyer(buyer_id=request.user.pk, number=number)
    if order is None:
        raise NotFoundError("订单不存在", code="order_not_found")
    return order


def _topup_context(order: Order, events: list[OrderEvent]) -> dict[str, object]:
    """The timeline, and for a direct top-up its target (masked) and its progress (web/_topup_progress.html)."""
    is_topup = _is_direct_topup(order)
    progress = topup_progress(order, events) if is_topup else None
    return {
        "events": events,
        "is_direct_topup": is_topup,
        "topup_lines": order_topup_target_lines(order=order) if is_topup else [],
        "progress": progress,
        "progress_poll_seconds": TOPUP_POLL_SECONDS,
        "current_event_id": progress.current_event_id if progress else None,
        "step_event_kinds": STEP_EVENT_KINDS if is_topup else (),
    }


def _detail_context(order: Order, user: User) -> dict[str, object]:
    events = list(order_timeline(order_id=order.pk))
    is_pending = order.status == OrderStatus.PENDING_PAYMENT
    balance = wallet_balance(user_id=order.buyer_id) if is_pending else None
    return {
        **_status_badge_context(order),
        **(pin_context(user, amount=order.total_amount) if is_pending else {}),
        "balance": balance,
        # What the wallet lacks to pay this order: the top-up link asks for exactly that.
        "shortfall": max(order.total_amount - balance, ZERO) if balance is not None else ZERO,
        "page_url": reverse("web:order_detail", args=[order.number]),
        **_topup_context(order, events),
        "secrets": secrets_for_order(order_id=order.pk) if order.status in KEYS_VISIBLE else [],
        "is_pending": is_pending,
        "points": order_points_summary(order),
        "payment_methods": payment_methods(amount=order.total_amount) if is_pending else [],
        "qr_payment": payment_qr_pending_for_order(order_id=order.pk) if is_pending else None,
        # Paid at a gateway but the order could not take it (closed meanwhile, sold out): said plainly on the page.
        "payments_in_wallet": list(payments_succeeded_for_order(order_id=order.pk)) if order.status in UNPAID else [],
        # Started and never paid, closed since the order closed: their QR codes can no longer be paid.
        "payments_closed": list(payments_closed_for_order(order_id=order.pk)) if order.status in UNPAID else [],
        **_after_sales_context(order),
    }


def _after_sales_context(order: Order) -> dict[str, object]:
    """售后 on the order page: its requests (the newest first, with staff's answer) and whether the buyer may ask."""
    requests = after_sales_requests_of_order(buyer_id=order.buyer_id, order_id=order.pk)
    may_ask = order.status in AFTER_SALES_REQUESTABLE and after_sales_refusal(order) is None
    return {"after_sales_requests": requests, "may_request_after_sales": may_ask,
            "after_sales_deadline": after_sales_deadline(order) if may_ask else None}


@require_GET
@login_required
def order_list(request: BuyerRequest) -> HttpResponse:
    page = Paginator(orders_of_buyer(buyer_id=request.user.pk), ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    # The same badge as the order's page: 已支付，等待人工发货 for an order staff have yet to deliver.
    awaiting_staff = {order.pk for order in page.object_list
                      if order_awaits_staff(order=order) and not _is_direct_topup(order)}
    # And 正在确认支付 for an unpaid order whose gateway payment is in flight, as its page says.
    confirming = orders_with_payment_in_flight(order_ids=[
        order.pk for order in page.object_list if order.status == OrderStatus.PENDING_PAYMENT])
    # A direct top-up's target, masked (138****1234): which of several top-ups is which.
    targets = {order.pk: topup_target_summary(order_topup_target_lines(order=order))
               for order in page.object_list if order.topup_target}
    credited = {order.pk for order in page.object_list if is_topup_credited(order)}  # 已到账, as its page says
    return render(request, "web/order_list.html", {"page": page, "awaiting_staff": awaiting_staff,
                                                   "confirming": confirming, "targets": targets,
                                                   "credited": credited})


@require_GET
@never_cache  # the page shows card secrets: no browser or proxy copy
@login_required
@handles_application_errors
def order_detail(request: BuyerRequest, number: str) -> HttpResponse:
    order = own_order(request, number)
    if request.GET.get("out_trade_no"):
        # The return address order payments were started with before payments had its own: hand it on.
        return redirect_to_payment_return(request)
    return render(request, "web/order_detail.html", _detail_context(order, request.user))


@require_GET
@handles_application_errors
def order_status(request: BuyerRequest, number: str) -> HttpResponse:
    """htmx polling target: the status badge while the order is in progress. The page is refreshed instead once the
    order moved on (another status, a new line on its timeline) — the refreshed page of a final order no longer
    polls — and once this visitor can no longer see it (logged out, another account in another tab): the refresh
    shows the login page or the 404 rather than the badge swapping in a page of its own."""
    if not request.user.is_authenticated:
        if request.htmx:
            return HttpResponseClientRefresh()
        return redirect_to_login(request.get_full_path())
    order = order_of_buyer(buyer_id=request.user.pk, number=number)
    if order is None:
        if request.htmx:
            return HttpResponseClientRefresh()
        raise NotFoundError("订单不存在", code="order_not_found")
    context = _status_badge_context(order)
    if request.htmx and request.GET.get("was"):
        seen = request.GET.get("seen")
        if request.GET["was"] != order.status or (seen is not None and seen != str(context["last_event_id"])):
            return HttpResponseClientRefresh()
    return render(request, "web/_order_status.html", context)


@require_GET
@handles_application_errors
def order_progress(request: BuyerRequest, number: str) -> HttpResponse:
    """htmx polling target of a paid direct top-up's progress block: the block again (it stops polling once the
    order is final), with the status badge and the timeline swapped out of band, so the steps move without a
    reload. A visitor who can no longer see the order gets the page refreshed, as `order_status` does."""
    if not request.user.is_authenticated:
        if request.htmx:
            return HttpResponseClientRefresh()
        return redirect_to_login(request.get_full_path())
    order = order_of_buyer(buyer_id=request.user.pk, number=number)
    if order is None:
        if request.htmx:
            return HttpResponseClientRefresh()
        raise NotFoundError("订单不存在", code="order_not_found")
    if not request.htmx:  # the address opened directly: the order's page
        return redirect("web:order_detail", number=order.number)
    events = list(order_timeline(order_id=order.pk))
    context = {**_status_badge_context(order), **_topup_context(order, events), "is_swap": True}
    return render(request, "web/_topup_progress.html", context)


@require_GET
@login_required
@handles_application_errors
def order_keys_txt(request: BuyerRequest, number: str) -> HttpResponse:
    order = own_order(request, number)
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


@sensitive_post_parameters(PIN_FIELD)
@require_http_methods(["GET", "POST"])
@login_required
@handles_application_errors
def order_pay(request: BuyerRequest, number: str) -> HttpResponse:
    """Pay a pending order: from the wallet (no channel, or "balance"), or with the posted channel. While a
    gateway payment of the order is in flight, the buyer is asked first (a page whose form posts again with
    `confirm_second_payment`). A GET (the address opened directly, a reload) shows the order."""
    order = own_order(request, number)
    if request.method == "GET":
        return redirect("web:order_detail", number=order.number)
    channel_code = request.POST.get("channel", "")[:40]
    is_confirmed = request.POST.get(CONFIRM_SECOND_PAYMENT) == "1"
    try:
        if not is_wallet_method(channel_code):
            return gateway_response(request, start_order_payment(request, order=order, channel_code=channel_code,
                                                                 is_second_payment_confirmed=is_confirmed))
        order_pay_from_wallet(order_id=order.pk, buyer_id=request.user.pk, is_second_payment_confirmed=is_confirmed,
                              pin=posted_pin(request), pin_settings=pin_settings_of(request.user))
    except PaymentInFlightError as error:
        return render(request, "web/order_pay_confirm.html", {
            **pin_context(request.user, amount=order.total_amount), "is_wallet": is_wallet_method(channel_code),
            "order": order, "channel_code": channel_code, "message": message_for(error),
            "payment_in_flight": payment_in_flight_for_order(order_id=order.pk),
            "confirm_field": CONFIRM_SECOND_PAYMENT}, status=status_for(error))
    except ApplicationError as error:
        order.refresh_from_db()
        return rejected(request, "web/order_detail.html", _detail_context(order, request.user), error)
    messages.success(request, paid_message(order, _("支付成功，卡密已发放")))
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
    order = own_order(request, number)
    payment = _own_order_payment(request, order, payment_number)
    is_waiting = order.status == OrderStatus.PENDING_PAYMENT and payment.status == PaymentStatus.PENDING
    context = {
        "order": order, "payment": payment, "is_waiting": is_waiting,
        "is_polling": is_waiting or order.status in IN_PROGRESS - {OrderStatus.PENDING_PAYMENT},
        "secrets": secrets_for_order(order_id=order.pk) if order.status in KEYS_VISIBLE else [],
        "in_wallet": payment.status == PaymentStatus.SUCCEEDED and order.status in UNPAID,
        "simulator_link": simulator_link(payment.qr_code),
        "is_direct_topup": _is_direct_topup(order),
    }
    template = "web/_order_payment_status.html" if request.htmx else "web/order_payment.html"
    return render(request, template, context)



@require_http_methods(["GET", "POST"])
@login_required
@handles_application_errors
def order_cancel_view(request: BuyerRequest, number: str) -> HttpResponse:
    """GET asks (the 取消订单 button leads here, no JavaScript needed); the form there posts to cancel."""
    order = own_order(request, number)
    if request.method == "GET":
        if order.status != OrderStatus.PENDING_PAYMENT:
            return redirect("web:order_detail", number=order.number)
        return render(request, "web/order_cancel_confirm.html", {
            "order": order, "payment_in_flight": payment_in_flight_for_order(order_id=order.pk)})
    try:
        order_cancel(order_id=order.pk, buyer_id=request.user.pk)
    except ApplicationError as error:
        order.refresh_from_db()
        return rejected(request, "web/order_detail.html", _detail_context(order, request.user), error)
    messages.success(request, _("订单已取消"))
    return redirect("web:order_detail", number=order.number)
