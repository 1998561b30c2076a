"""The buyer's orders: list, detail with timeline and delivered keys, TXT export, pay from wallet, cancel."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh

from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.inventory.selectors import secrets_for_order
from kameng.orders.models import Order, OrderStatus
from kameng.orders.selectors import order_of_buyer, order_timeline, orders_of_buyer
from kameng.orders.services import order_cancel, order_pay_with_wallet
from kameng.web.errors import handles_application_errors, rejected
from kameng.web.http import BuyerRequest

ORDERS_PER_PAGE = 20
# States in which the buyer holds the keys (after-sales keeps them visible while a report is handled).
KEYS_VISIBLE = frozenset({OrderStatus.DELIVERED, OrderStatus.COMPLETED, OrderStatus.AFTER_SALES})
# States that can still change on their own (payment elsewhere, expiry, fulfilment): the page polls these.
IN_PROGRESS = frozenset({OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.FULFILLING,
                         OrderStatus.UNDER_REVIEW})


def _own_order(request: BuyerRequest, number: str) -> Order:
    order = order_of_buyer(buyer_id=request.user.pk, number=number)
    if order is None:
        raise NotFoundError("订单不存在", code="order_not_found")
    return order


def _detail_context(order: Order) -> dict[str, object]:
    return {
        "order": order,
        "events": list(order_timeline(order_id=order.pk)),
        "secrets": secrets_for_order(order_id=order.pk) if order.status in KEYS_VISIBLE else [],
        "is_pending": order.status == OrderStatus.PENDING_PAYMENT,
        "is_in_progress": order.status in IN_PROGRESS,
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
    return render(request, "web/order_detail.html", _detail_context(_own_order(request, number)))


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
        raise ConflictError("订单尚未发货，暂无卡密", code="not_delivered")
    secrets = secrets_for_order(order_id=order.pk)
    response = HttpResponse("".join(f"{secret}\n" for secret in secrets), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{order.number}.txt"'
    patch_cache_control(response, no_store=True, private=True)
    return response


@require_POST
@login_required
@handles_application_errors
def order_pay(request: BuyerRequest, number: str) -> HttpResponse:
    order = _own_order(request, number)
    try:
        order_pay_with_wallet(order_id=order.pk, buyer_id=request.user.pk)
    except ApplicationError as error:
        order.refresh_from_db()
        return rejected(request, "web/order_detail.html", _detail_context(order), error)
    messages.success(request, _("支付成功，卡密已发放"))
    return redirect("web:order_detail", number=order.number)


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
