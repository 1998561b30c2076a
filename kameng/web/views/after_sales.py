"""The buyer's after-sales pages (售后): the request form on an order (申请售后), withdrawing it (撤销), and the list
of their requests (我的售后). The rules and their messages are kameng.after_sales.services'."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from kameng.after_sales.selectors import after_sales_requests_of_buyer
from kameng.after_sales.services import after_sales_deadline, after_sales_refusal, after_sales_request_create
from kameng.after_sales.services import after_sales_request_withdraw as withdraw
from kameng.core.device import risk_device_id
from kameng.core.errors import ApplicationError
from kameng.core.http import client_address
from kameng.orders.refunds import order_refundable_amount
from kameng.web.errors import handles_application_errors, rejected
from kameng.web.forms import AfterSalesForm
from kameng.web.http import BuyerRequest
from kameng.web.views.orders import own_order

REQUESTS_PER_PAGE = 20


@require_http_methods(["GET", "POST"])
@login_required
@handles_application_errors
def order_after_sales(request: BuyerRequest, number: str) -> HttpResponse:
    """申请售后 on the buyer's own order: GET the form (or why it cannot be asked), POST the request."""
    order = own_order(request, number)
    refusal = after_sales_refusal(order)
    if refusal is not None:
        raise refusal
    form = AfterSalesForm(request.POST or None)
    context = {"order": order, "form": form, "refundable": order_refundable_amount(order),
               "deadline": after_sales_deadline(order)}
    if request.method == "POST" and form.is_valid():
        try:
            after_sales_request_create(
                buyer_id=request.user.pk, order_number=order.number, reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"], client_ip=client_address(request),
                device_id=risk_device_id(request))
        except ApplicationError as error:
            return rejected(request, "web/after_sales_form.html", context, error)
        messages.success(request, _("售后申请已提交，客服会尽快处理"))
        return redirect("web:order_detail", number=order.number)
    status = 400 if request.method == "POST" else 200
    return render(request, "web/after_sales_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@handles_application_errors
def order_after_sales_withdraw(request: BuyerRequest, number: str) -> HttpResponse:
    """撤销 the pending request of the buyer's own order. A GET (the address opened directly) shows the order."""
    order = own_order(request, number)
    if request.method == "GET":
        return redirect("web:order_detail", number=order.number)
    withdraw(buyer_id=request.user.pk, order_number=order.number)
    messages.success(request, _("售后申请已撤销"))
    return redirect("web:order_detail", number=order.number)


@require_GET
@login_required
def after_sales_list(request: BuyerRequest) -> HttpResponse:
    """我的售后: every request of the buyer, newest first, with its state and staff's answer."""
    page = Paginator(after_sales_requests_of_buyer(buyer_id=request.user.pk), REQUESTS_PER_PAGE).get_page(
        request.GET.get("page"))
    return render(request, "web/after_sales_list.html", {"page": page})
