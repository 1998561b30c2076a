"""The reseller's price list (拿货价): every SKU on sale with its retail price and this reseller's price, as the
price function gives it on the Open API channel (what an API or batch order of one unit would cost)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpResponse
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from kameng.catalog.pricing import SALES_CHANNEL_OPENAPI, sku_price
from kameng.catalog.selectors import products_on_sale, skus_for_sale
from kameng.core.errors import ApplicationError
from kameng.core.money import money
from kameng.web.views.reseller_console import (
    RESELLER_CONSOLE_NAV,
    ResellerRequest,
    console_render,
    reseller_required,
)

RESELLER_CONSOLE_NAV.append(("web:reseller_prices", gettext_lazy("拿货价")))


@dataclass(frozen=True)
class PriceRow:
    sku_id: int
    product_name: str
    sku_name: str
    delivery_kind: str
    retail: Decimal
    price: Decimal | None  # None: the rules leave nothing to pay (not purchasable now)

    @property
    def saving(self) -> Decimal | None:
        return money(self.retail - self.price) if self.price is not None else None


def reseller_price_rows(*, buyer_id: int) -> list[PriceRow]:
    """Every enabled SKU of an on-sale product, by product then SKU, at the buyer's price."""
    sku_ids = [sku.pk for product in products_on_sale().order_by("sort_order", "pk") for sku in product.skus.all()]
    for_sale = skus_for_sale(sku_ids=sku_ids)
    rows = []
    for sku_id in sku_ids:
        sku = for_sale.get(sku_id)
        if sku is None:
            continue
        try:
            price: Decimal | None = sku_price(sku=sku, buyer_id=buyer_id, quantity=1,
                                              sales_channel=SALES_CHANNEL_OPENAPI).unit_price
        except ApplicationError:
            price = None
        rows.append(PriceRow(sku_id=sku_id, product_name=sku.product_name, sku_name=sku.sku_name,
                             delivery_kind=sku.delivery_kind, retail=money(sku.price), price=price))
    return rows


@require_GET
@reseller_required(active=True)
def reseller_prices(request: ResellerRequest) -> HttpResponse:
    return console_render(request, "web/reseller/prices.html",
                          {"rows": reseller_price_rows(buyer_id=request.user.pk)})
