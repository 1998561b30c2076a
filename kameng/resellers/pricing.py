"""The reseller tier price rule (代理等级价) and the process caches that keep it off the database on checkout.

`reseller_price_rule` is listed in `KAMENG_PRICE_RULES` after the membership rule. For a buyer who is an ACTIVE
reseller with an active tier, the tier price of the SKU is
1. the tier's TierPrice row for the SKU: `inherit` → the tier's default discount off retail, `percent` →
   `percent_off` off retail, `fixed` → `fixed_price`;
2. else the tier's default discount (`discount_percent`) off retail,
always worked out from the SKU's retail price (零售价), rounded to the fen half up, never below one fen.

Composition with the membership rule (the choice): the buyer gets the BETTER of the two, not both. The rule sees
the unit price the membership rule left and answers one line (code `reseller_tier`, label "<tier name>价") that
takes it down to the tier price only when the tier price is lower; otherwise it answers nothing and the member
price stands. So a reseller who is also a VIP pays min(member price, tier price), and the discounts never stack.
The floor clamp (最低售价) is the price function's, after every rule (kameng.catalog.pricing).

Channels: the rule applies on every channel (storefront, the JSON API, the Open API "openapi", batch purchase)
except a sub-site's ("subsite:<id>"), where the buyer is the sub-site's customer and the sub-site rule prices the
owner's cost by calling `sku_price` for the OWNER on the Open API channel, which this rule then prices.

Caching (the rule runs on every checkout): the tiers and tier prices are held per process and checked against a
token in the shared cache at most once a second (kameng.core.cache.VersionedProcessCache); a buyer's (is active
reseller, tier id) is held per process until the token changes. Any staff change of a tier, a tier price or a
reseller's state or tier changes the token after commit (`reseller_tables_changed`), so every process sees it
within about a second. Without any active reseller
the rule costs one dictionary look-up and no query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from kameng.catalog.pricing import PriceLine, subsite_id_of_channel
from kameng.catalog.selectors import SkuForSale
from kameng.core.cache import VersionedProcessCache
from kameng.core.money import FEN, money
from kameng.resellers.models import Reseller, ResellerStatus, ResellerTier, TierPrice, TierPriceKind

RESELLER_LINE_CODE = "reseller_tier"
TABLES_CHECK_SECONDS = 1.0
_LOCAL_BUYERS_MAX = 100_000  # forgotten all at once past this: a bound on memory, not an eviction policy
_TABLES_TOKEN_KEY = "resellers:tiers"  # noqa: S105 - a cache key, not a secret
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class TierRow:
    """A tier's price for one SKU, as stored."""

    kind: str
    percent_off: Decimal | None = None
    fixed_price: Decimal | None = None


@dataclass(frozen=True)
class TierInfo:
    tier_id: int
    name: str
    discount_percent: Decimal


def percent_off(retail: Decimal, percent: Decimal) -> Decimal:
    """`percent` % off the retail price, rounded half up to the fen, never below one fen."""
    return max(money(retail * (HUNDRED - percent) / HUNDRED), FEN)


def tier_unit_price(*, retail: Decimal, discount_percent: Decimal, row: TierRow | None) -> Decimal:
    """The tier price of one unit (module docstring): the row's, else the tier's default discount off retail."""
    if row is not None and row.kind == TierPriceKind.FIXED and row.fixed_price is not None:
        return money(row.fixed_price)
    if row is not None and row.kind == TierPriceKind.PERCENT and row.percent_off is not None:
        return percent_off(retail, row.percent_off)
    return percent_off(retail, discount_percent)


@dataclass(frozen=True)
class TierTables:
    token: str
    tiers: dict[int, TierInfo] = field(default_factory=dict)  # active tiers only
    rows: dict[tuple[int, int], TierRow] = field(default_factory=dict)  # (tier id, sku id) → row
    has_active_resellers: bool = False

    def unit_price(self, *, tier_id: int, sku_id: int, retail: Decimal) -> Decimal | None:
        tier = self.tiers.get(tier_id)
        if tier is None:
            return None
        return tier_unit_price(retail=retail, discount_percent=tier.discount_percent,
                               row=self.rows.get((tier_id, sku_id)))


def _load_tables(token: str) -> TierTables:
    tiers = {tier.pk: TierInfo(tier_id=tier.pk, name=tier.name, discount_percent=tier.discount_percent)
             for tier in ResellerTier.objects.filter(is_active=True)}
    rows = {(tier_id, sku_id): TierRow(kind=kind, percent_off=percent, fixed_price=fixed)
            for tier_id, sku_id, kind, percent, fixed in TierPrice.objects.filter(tier_id__in=list(tiers)).values_list(
                "tier_id", "sku_id", "kind", "percent_off", "fixed_price")}
    has_active = bool(tiers) and Reseller.objects.filter(status=ResellerStatus.ACTIVE,
                                                         tier_id__in=list(tiers)).exists()
    return TierTables(token=token, tiers=tiers, rows=rows, has_active_resellers=has_active)


# The tiers and tier prices, checked against the shared token at most once a second; entries: buyer id -> the
# tier id of an active reseller, else None, until the token moves.
_tables = VersionedProcessCache[TierTables, int, int | None](
    key=_TABLES_TOKEN_KEY, load=_load_tables, check_seconds=TABLES_CHECK_SECONDS, entries_max=_LOCAL_BUYERS_MAX)


def reseller_caches_clear() -> None:
    """Forget this process's copies (tests; a fresh start)."""
    _tables.forget()


def tier_tables() -> TierTables:
    """The tiers and tier prices, as fresh as the shared token said within the last second."""
    return _tables.value()


def reseller_tables_changed() -> None:
    """Staff changed a tier, a tier price or a reseller: every process reloads (call after commit)."""
    _tables.changed()


def _stored_tier_id(buyer_id: int) -> int | None:
    row = Reseller.objects.filter(user_id=buyer_id).values_list("status", "tier_id").first()
    return row[1] if row is not None and row[0] == ResellerStatus.ACTIVE else None


def buyer_tier_seen(*, buyer_id: int, status: str, tier_id: int | None) -> None:
    """The buyer's reseller row was read by another query (the Open API key's): hold its tier as `buyer_tier_id`
    would have read it, so that the checkout does not ask again."""
    _tables.entries_set([(buyer_id, tier_id if status == ResellerStatus.ACTIVE else None)])


def buyer_tier_id(buyer_id: int) -> int | None:
    """The tier of the buyer if it is an active reseller with a tier, else None (held per process)."""
    return _tables.entry(buyer_id, _stored_tier_id)


def reseller_unit_price(*, sku: SkuForSale, buyer_id: int) -> Decimal | None:
    """The buyer's tier price of one unit of the SKU, or None if the buyer has no tier price."""
    tables = tier_tables()
    if not tables.has_active_resellers:
        return None
    tier_id = buyer_tier_id(buyer_id)
    if tier_id is None:
        return None
    return tables.unit_price(tier_id=tier_id, sku_id=sku.sku_id, retail=money(sku.price))


def reseller_price_rule(*, sku: SkuForSale, buyer_id: int, quantity: int, sales_channel: str,
                        unit_price: Decimal) -> PriceLine | None:
    """The price rule: down to the buyer's tier price when that is lower than the unit price so far, or None."""
    if subsite_id_of_channel(sales_channel) is not None:
        return None
    tables = tier_tables()
    if not tables.has_active_resellers:
        return None
    tier_id = buyer_tier_id(buyer_id)
    if tier_id is None:
        return None
    tier_price = tables.unit_price(tier_id=tier_id, sku_id=sku.sku_id, retail=money(sku.price))
    if tier_price is None or tier_price >= unit_price:
        return None
    return PriceLine(code=RESELLER_LINE_CODE, label=f"{tables.tiers[tier_id].name}价", amount=tier_price - unit_price)


def _reseller_rule_warm(*, buyer_id: int, sales_channel: str) -> None:
    if subsite_id_of_channel(sales_channel) is None and tier_tables().has_active_resellers:
        buyer_tier_id(buyer_id)


reseller_price_rule.warm = _reseller_rule_warm  # type: ignore[attr-defined]  # kameng.catalog.pricing.price_rules_warm
