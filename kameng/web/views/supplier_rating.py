"""The supplier console's rating page (星级评分): the supplier's current stars, the components of its latest daily
rating with the reasons, and its history. Only the logged-in supplier's own snapshots are read."""

from __future__ import annotations

from decimal import Decimal

from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from kameng.suppliers.models import RatingSnapshot, RatingWeights
from kameng.web.views.supplier_console import SUPPLIER_CONSOLE_NAV, SupplierRequest, console_render, supplier_required

SUPPLIER_CONSOLE_NAV.append(("web:supplier_rating", _("星级评分")))

HISTORY_DAYS = 30
COMPONENTS = (
    ("success", _("成功率"), "success_weight"),
    ("delivery", _("到账时间"), "delivery_weight"),
    ("after_sales", _("售后率"), "after_sales_weight"),
    ("price", _("价格竞争力"), "price_weight"),
    ("stock", _("库存稳定性"), "stock_weight"),
)


@require_GET
@supplier_required
def supplier_rating(request: SupplierRequest) -> HttpResponse:
    history = list(RatingSnapshot.objects.filter(supplier_id=request.supplier.pk).order_by("-day")[:HISTORY_DAYS])
    latest = history[0] if history else None
    weights = RatingWeights.current()
    components = []
    if latest is not None:
        for name, label, weight_field in COMPONENTS:
            value = Decimal(latest.components.get(name, "0.5"))
            components.append({"name": name, "label": label, "percent": round(value * 100),
                               "weight": round(getattr(weights, weight_field) * 100)})
    return console_render(request, "web/supplier/rating.html", {
        "latest": latest, "components": components, "history": history})
