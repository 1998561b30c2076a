"""Tier prices staff set, and the platform's cost they may never go below.

The platform's cost of a SKU is the highest of its floor price (最低售价, `Sku.floor_price`) and the cheapest active
offer of an approved supplier for it (the suppliers' `sku_supply_costs`, reached through the dotted path in
settings.KAMENG_SKU_SUPPLY_COST, since resellers do not import suppliers). A SKU with neither has no known cost
and any positive tier price is accepted. The check covers a fixed price, the result of a percent, and a tier's
default discount for every SKU that takes it (no row of its own, or an `inherit` row). Every write here tells the
price rule's caches after commit (kameng.resellers.pricing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from kameng.catalog.models import Sku
from kameng.core.errors import ApplicationError, NotFoundError
from kameng.core.money import money
from kameng.resellers.models import ResellerTier, TierPrice, TierPriceKind
from kameng.resellers.pricing import TierRow, reseller_tables_changed, tier_unit_price

BELOW_COST_LISTED = 3  # SKUs named in one refusal of a default discount


class TierPriceBelowCostError(ApplicationError):
    """A tier price below the platform's cost of the SKU."""


class TierPriceInvalidError(ApplicationError):
    """A tier price row whose fields do not fit its kind."""


def sku_supply_costs(sku_ids: Iterable[int]) -> dict[int, Decimal]:
    """The supply cost of each SKU that has one, from the configured source (settings.KAMENG_SKU_SUPPLY_COST)."""
    source: Callable[[Iterable[int]], dict[int, Decimal]] = import_string(settings.KAMENG_SKU_SUPPLY_COST)
    return source(list(sku_ids))


def sku_platform_costs(sku_ids: Iterable[int]) -> dict[int, Decimal]:
    """max(floor price, supply cost) of each SKU that has either (module docstring)."""
    ids = list(sku_ids)
    floors = dict(Sku.objects.filter(pk__in=ids, floor_price__isnull=False).values_list("pk", "floor_price"))
    supply = sku_supply_costs(ids)
    costs: dict[int, Decimal] = {}
    for sku_id in set(floors) | set(supply):
        known = [cost for cost in (floors.get(sku_id), supply.get(sku_id)) if cost is not None]
        costs[sku_id] = money(max(known))
    return costs


def _below_cost_error(*, sku: Sku, price: Decimal, cost: Decimal) -> TierPriceBelowCostError:
    return TierPriceBelowCostError(
        "「%(sku)s」的代理价 ¥%(price)s 低于平台成本 ¥%(cost)s（最低售价与最低供货价中较高者），请调高价格或减小折扣",
        code="tier_price_below_cost", params={"sku": str(sku), "price": price, "cost": cost},
        extra={"sku_id": sku.pk, "price": str(price), "cost": str(cost)})


def tier_price_row_clean(*, kind: str, percent_off: Decimal | None,
                         fixed_price: Decimal | None) -> TierRow:
    """The row as stored for its kind: the field it needs present, the others cleared."""
    if kind == TierPriceKind.FIXED:
        if fixed_price is None or fixed_price <= 0:
            raise TierPriceInvalidError("固定价格方式须填写大于 0 的固定价格", code="tier_price_fixed_required")
        return TierRow(kind=kind, fixed_price=fixed_price)
    if kind == TierPriceKind.PERCENT:
        if percent_off is None or not Decimal(0) <= percent_off < Decimal(100):
            raise TierPriceInvalidError("百分比折扣方式须填写 0 到 100 之间（不含 100）的折扣",
                                        code="tier_price_percent_required")
        return TierRow(kind=kind, percent_off=percent_off)
    if kind == TierPriceKind.INHERIT:
        return TierRow(kind=kind)
    raise TierPriceInvalidError("未知的定价方式", code="tier_price_kind_unknown")


def tier_price_check(*, sku: Sku, discount_percent: Decimal, row: TierRow,
                     costs: dict[int, Decimal] | None = None) -> Decimal:
    """The tier price the row makes for the SKU; raises `TierPriceBelowCostError` below the platform's cost."""
    price = tier_unit_price(retail=sku.price, discount_percent=discount_percent, row=row)
    cost = (costs if costs is not None else sku_platform_costs([sku.pk])).get(sku.pk)
    if cost is not None and price < cost:
        raise _below_cost_error(sku=sku, price=price, cost=cost)
    return price


def tier_price_set(*, tier_id: int, sku_id: int, kind: str, percent_off: Decimal | None = None,
                   fixed_price: Decimal | None = None) -> TierPrice:
    """Set the tier's price of the SKU (one row per tier and SKU), refused below the platform's cost."""
    tier = ResellerTier.objects.filter(pk=tier_id).first()
    sku = Sku.objects.select_related("product").filter(pk=sku_id).first()
    if tier is None or sku is None:
        raise NotFoundError("代理等级或规格不存在", code="tier_or_sku_not_found")
    row = tier_price_row_clean(kind=kind, percent_off=percent_off, fixed_price=fixed_price)
    tier_price_check(sku=sku, discount_percent=tier.discount_percent, row=row)
    with transaction.atomic():
        price, _ = TierPrice.objects.update_or_create(
            tier=tier, sku=sku,
            defaults={"kind": row.kind, "percent_off": row.percent_off, "fixed_price": row.fixed_price})
        transaction.on_commit(reseller_tables_changed)
    return price


def tier_discount_check(*, tier_id: int | None, discount_percent: Decimal) -> None:
    """Refuse a tier default discount that takes a SKU using it (no row, or an `inherit` row, of that tier) below
    its platform cost; the message names the first few such SKUs."""
    if not Decimal(0) <= discount_percent < Decimal(100):
        raise TierPriceInvalidError("折扣须在 0 到 100 之间（不含 100）", code="tier_discount_range")
    own = set()
    if tier_id is not None:
        own = set(TierPrice.objects.filter(tier_id=tier_id).exclude(kind=TierPriceKind.INHERIT)
                  .values_list("sku_id", flat=True))
    floors = set(Sku.objects.filter(floor_price__isnull=False).values_list("pk", flat=True))
    supplied = set(sku_supply_costs(Sku.objects.values_list("pk", flat=True)))
    candidates = (floors | supplied) - own
    if not candidates:
        return
    costs = sku_platform_costs(candidates)
    refused = []
    for sku in Sku.objects.select_related("product").filter(pk__in=candidates).order_by("pk"):
        try:
            tier_price_check(sku=sku, discount_percent=discount_percent, row=TierRow(kind=TierPriceKind.INHERIT),
                             costs=costs)
        except TierPriceBelowCostError as error:
            refused.append(error)
    if not refused:
        return
    if len(refused) == 1:
        raise refused[0]
    named = "；".join(error.message for error in refused[:BELOW_COST_LISTED])
    more = f"（共 {len(refused)} 个规格）" if len(refused) > BELOW_COST_LISTED else ""
    raise TierPriceBelowCostError(f"默认折扣 {discount_percent}% 会使以下规格低于平台成本：{named}{more}",
                                  code="tier_price_below_cost", extra={"count": len(refused)})


def tier_save(*, tier: ResellerTier) -> ResellerTier:
    """Save a tier (staff), its default discount checked against every SKU that takes it."""
    tier_discount_check(tier_id=tier.pk, discount_percent=tier.discount_percent)
    with transaction.atomic():
        tier.save()
        transaction.on_commit(reseller_tables_changed)
    return tier
