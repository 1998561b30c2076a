"""Points (积分) for buyers: the balance and statement (every movement with its order), and the points shop
(积分商城), where points are exchanged for goods (an order paid wholly in points, keys delivered at once)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from kameng.core.errors import ApplicationError
from kameng.core.http import client_address
from kameng.ledger.selectors import points_balance
from kameng.orders.services import QUANTITY_INPUT_MAX
from kameng.points.selectors import points_overview, points_shop_items
from kameng.points.services import points_exchange_create
from kameng.web.errors import handles_application_errors, rejected
from kameng.web.forms import new_request_id
from kameng.web.http import BuyerRequest


class ExchangeForm(forms.Form):
    quantity = forms.IntegerField(label=gettext_lazy("数量"), min_value=1, max_value=QUANTITY_INPUT_MAX, initial=1)
    request_id = forms.CharField(max_length=64, required=False, widget=forms.HiddenInput)


@require_GET
@login_required
def points_account(request: BuyerRequest) -> HttpResponse:
    overview = points_overview(user_id=request.user.pk)
    return render(request, "web/points.html", {"page_url": reverse("web:points"), "balance": overview.balance,
                                               "statement": overview.statement})


def _shop_context(request: HttpRequest) -> dict[str, object]:
    return {"page_url": reverse("web:points_shop"), "items": points_shop_items(),
            "balance": points_balance(user_id=request.user.pk) if request.user.is_authenticated else None,
            "request_id": new_request_id()}


@require_GET
def points_shop(request: HttpRequest) -> HttpResponse:
    return render(request, "web/points_shop.html", _shop_context(request))


@require_POST
@handles_application_errors
def points_exchange(request: HttpRequest, item_id: int) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("web:points_shop"))
    form = ExchangeForm(request.POST)
    if not form.is_valid():
        return render(request, "web/points_shop.html", {**_shop_context(request),
                                                        "error_message": _("请检查兑换数量")}, status=400)
    try:
        result = points_exchange_create(buyer_id=request.user.pk, item_id=item_id,
                                        quantity=form.cleaned_data["quantity"],
                                        request_id=form.cleaned_data["request_id"] or None,
                                        client_ip=client_address(request))
    except ApplicationError as error:
        return rejected(request, "web/points_shop.html", _shop_context(request), error)
    if result.created:
        messages.success(request, _("兑换成功，卡密已发放"))
    else:
        messages.info(request, _("该订单已提交过，以下是原订单"))
    return redirect(reverse("web:order_detail", args=[result.order.number]))
