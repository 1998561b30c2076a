"""The supplier console's orders (订单) and after-sales (售后) pages: what it delivered, read-only.

Rows come from kameng.suppliers.delivered, scoped to request.supplier: order number, time, quantity, cost, status
and delivery time — never the buyer's identity nor a card secret.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.translation import gettext_lazy, gettext_noop
from django.views.decorators.http import require_GET

from kameng.suppliers.delivered import supplier_delivered_orders, supplier_disputes
from kameng.web.views.supplier_console import SUPPLIER_CONSOLE_NAV, SupplierRequest, console_render, supplier_required

SUPPLIER_CONSOLE_NAV.append(("web:supplier_orders", gettext_lazy("订单")))
SUPPLIER_CONSOLE_NAV.append(("web:supplier_disputes", gettext_lazy("售后")))

ORDER_TEXTS = (
    gettext_noop("卡密"),
    gettext_noop("直充"),
    # top-up attempt statuses (kameng.suppliers.models.AttemptStatus)
    gettext_noop("已记录（待提交）"),
    gettext_noop("充值中"),
    gettext_noop("结果未知（待查询）"),
    gettext_noop("已到账"),
)


@require_GET
@supplier_required
def supplier_orders(request: SupplierRequest) -> HttpResponse:
    rows = supplier_delivered_orders(supplier_id=request.supplier.pk)
    return console_render(request, "web/supplier/orders.html", {"rows": rows})


@require_GET
@supplier_required
def supplier_disputes_view(request: SupplierRequest) -> HttpResponse:
    rows = supplier_disputes(supplier_id=request.supplier.pk)
    return console_render(request, "web/supplier/disputes.html", {"rows": rows})
