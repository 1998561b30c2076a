"""A supplier's own offers and card-key uploads, as edited in its console (供货商后台: 报价, 上传卡密).

Only an approved supplier that accepted the current agreement writes here (onboarding.supplier_can_sell_or_raise).
An offer is for one platform SKU, one per supplier and SKU, at a price above zero; card keys are uploaded only for
an offer whose stock is card keys, on a card-key product, and are stored as the supplier's own at the offer's
price (CardKey.supplier, CardKey.cost), duplicates anywhere on the platform refused with a count.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction

from kameng.catalog.models import DeliveryKind, ProductStatus, Sku
from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.inventory.batches import card_key_import_submit
from kameng.inventory.models import CardKeyBatch
from kameng.suppliers.models import OfferStockSource, Supplier, SupplierOffer
from kameng.suppliers.onboarding import supplier_can_sell_or_raise


@dataclass(frozen=True)
class OfferInput:
    price: Decimal
    stock_source: str
    upstream_product_id: str = ""
    max_per_day: int | None = None
    is_active: bool = True


def offerable_skus() -> list[Sku]:
    """Platform SKUs a supplier may offer: active, of a product on sale."""
    return list(Sku.objects.filter(is_active=True, product__status=ProductStatus.ON_SALE)
                .select_related("product").order_by("product__name", "sort_order", "pk"))


def _checked(sku: Sku, data: OfferInput) -> OfferInput:
    if data.price is None or data.price <= 0:
        raise ApplicationError("供货价必须大于 0", code="offer_price_not_positive")
    if data.price != data.price.quantize(Decimal("0.01")):
        raise ApplicationError("供货价最多两位小数", code="offer_price_places")
    if data.stock_source not in OfferStockSource.values:
        raise ApplicationError("请选择库存来源", code="offer_stock_source_invalid")
    upstream = data.upstream_product_id.strip()
    if data.stock_source == OfferStockSource.CARD_KEYS:
        if sku.product.delivery_kind != DeliveryKind.CARD_KEY:
            raise ApplicationError("该商品不是卡密发货，库存来源请选「上游接口」", code="offer_not_card_key_product")
        upstream = ""
    elif not upstream:
        raise ApplicationError("库存来源为上游接口时，请填写上游商品编号", code="offer_upstream_id_required")
    if data.max_per_day is not None and data.max_per_day < 1:
        raise ApplicationError("每日上限至少为 1，留空表示不限", code="offer_max_per_day")
    return OfferInput(price=data.price, stock_source=data.stock_source, upstream_product_id=upstream[:64],
                      max_per_day=data.max_per_day, is_active=data.is_active)


def supplier_offer_create(*, supplier: Supplier, sku_id: int, data: OfferInput) -> SupplierOffer:
    supplier_can_sell_or_raise(supplier=supplier)
    sku = Sku.objects.select_related("product").filter(pk=sku_id, is_active=True,
                                                       product__status=ProductStatus.ON_SALE).first()
    if sku is None:
        raise NotFoundError("规格不存在或已停售", code="sku_not_found")
    checked = _checked(sku, data)
    try:
        with transaction.atomic():
            return SupplierOffer.objects.create(
                supplier=supplier, sku=sku, price=checked.price, stock_source=checked.stock_source,
                upstream_product_id=checked.upstream_product_id, max_per_day=checked.max_per_day,
                is_active=checked.is_active)
    except IntegrityError:
        raise ConflictError("您已为该规格创建过报价，请直接修改原报价", code="offer_exists") from None


def supplier_offer_of(*, supplier: Supplier, offer_id: int) -> SupplierOffer:
    """One of the supplier's own offers; another supplier's answers as if it did not exist."""
    offer = (SupplierOffer.objects.select_related("sku__product").filter(pk=offer_id, supplier=supplier).first())
    if offer is None:
        raise NotFoundError("报价不存在", code="offer_not_found")
    return offer


def supplier_offer_update(*, supplier: Supplier, offer_id: int, data: OfferInput) -> SupplierOffer:
    """A new price applies to orders routed from now on: routed orders keep the cost copied onto them."""
    supplier_can_sell_or_raise(supplier=supplier)
    offer = supplier_offer_of(supplier=supplier, offer_id=offer_id)
    checked = _checked(offer.sku, data)
    offer.price, offer.stock_source = checked.price, checked.stock_source
    offer.upstream_product_id, offer.max_per_day = checked.upstream_product_id, checked.max_per_day
    offer.is_active = checked.is_active
    offer.save(update_fields=["price", "stock_source", "upstream_product_id", "max_per_day", "is_active",
                              "updated_at"])
    return offer


def supplier_card_keys_upload(*, supplier: Supplier, offer_id: int, text: str, is_csv: bool = False,
                              source_name: str = "") -> CardKeyBatch:
    """Import keys for one of the supplier's card-key offers, stored as its own at the offer's price."""
    supplier_can_sell_or_raise(supplier=supplier)
    offer = supplier_offer_of(supplier=supplier, offer_id=offer_id)
    if offer.stock_source != OfferStockSource.CARD_KEYS:
        raise ConflictError("该报价的库存来源不是卡密，不能上传卡密", code="offer_not_card_keys")
    return card_key_import_submit(sku_id=offer.sku_id, created_by_id=supplier.owner_id, text=text, is_csv=is_csv,
                                  source_name=source_name or f"供货商 {supplier.pk}", supplier_id=supplier.pk,
                                  cost=offer.price)


def supplier_batches(*, supplier: Supplier, limit: int = 20) -> list[CardKeyBatch]:
    return list(CardKeyBatch.objects.filter(supplier=supplier).select_related("sku__product")
                .order_by("-pk")[:limit])
