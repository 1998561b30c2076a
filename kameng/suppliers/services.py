"""Writes on suppliers' offers."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from kameng.core.errors import ApplicationError, NotFoundError
from kameng.core.money import money
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.inventory.services import card_key_plan_forget
from kameng.suppliers.models import SupplierOffer


def offer_price_change(*, offer_id: int, price: Decimal) -> SupplierOffer:
    """Set an offer's price (our cost) and, in the same transaction, the cost of its supplier's AVAILABLE keys of
    that SKU. Sold and reserved keys keep the cost they were taken at: an order already placed never changes."""
    price = money(price)
    if price <= 0:
        raise ApplicationError("供货价必须大于 0：请填写供货价（元）", code="invalid_price")
    with transaction.atomic():
        offer = SupplierOffer.objects.select_for_update().filter(pk=offer_id).first()
        if offer is None:
            raise NotFoundError("供货报价不存在", code="offer_not_found")
        offer.price = price
        offer.save(update_fields=["price", "updated_at"])
        CardKey.objects.filter(sku_id=offer.sku_id, supplier_id=offer.supplier_id,
                               status=CardKeyStatus.AVAILABLE).update(cost=price)
        transaction.on_commit(lambda: card_key_plan_forget(sku_id=offer.sku_id))
    return offer
