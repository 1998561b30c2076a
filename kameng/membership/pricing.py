"""The membership price rule and the process caches that keep it off the database on the checkout path.

`member_price_rule` is listed in `KAMENG_PRICE_RULES` (on by default): for a buyer at level R it answers one line
(code `member`) that takes the unit price to, in order of precedence,
1. a member price of the SKU (a fixed price, or a rate of the unit price),
2. else a member rate of the SKU's category (the product's own category, not its parents),
3. else the level's discount rate (VIP4 = 0.95 by default),
where a SKU's or category's row of level R is used, or else the row of the highest level below R that has one
(a member price set for VIP2 also serves VIP3 until VIP3 gets its own). The line never raises the price (a member
price above the unit price is ignored), never takes it below one fen, and is rounded to the fen half up; the floor
clamp is the price function's (kameng.catalog.pricing), after every rule.

Caching (the checkout path runs ~1,000 times a second and must not query for this):
- the level and price tables are held per process and checked against a token in the shared cache at most once a
  second (kameng.core.cache.VersionedProcessCache); saving a level or a member price changes the token after
  commit, so every process reloads within ~1 s;
- a buyer's level is held per process for `LEVEL_TTL_SECONDS`, read on a miss from the database (its membership
  row, one plain indexed query: a Redis read in front of it cost as much CPU as the query, and a buyer's first
  order — each of a flash sale's — paid for both plus the write back). The process that counted the spend updates
  its own copy at once; other processes may show the old level for up to `LEVEL_TTL_SECONDS` after an upgrade or a
  drop. Whatever level was used, the order stores the lines it was priced with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection

from kameng.catalog.pricing import SUBSITE_CHANNEL_PREFIX, PriceLine
from kameng.catalog.selectors import SkuForSale
from kameng.core.cache import VersionedProcessCache
from kameng.core.money import FEN, money
from kameng.membership.models import MemberLevel, MemberPrice, Membership

MEMBER_LINE_CODE = "member"
MEMBER_LINE_LABEL = "会员价"
LEVEL_TTL_SECONDS = 5.0
TABLES_CHECK_SECONDS = 1.0
_LOCAL_LEVELS_MAX = 100_000  # forgotten all at once past this: a bound on memory, not an eviction policy
_TABLES_TOKEN_KEY = "membership:tables"  # noqa: S105 - a cache key, not a secret


@dataclass(frozen=True)
class LevelInfo:
    rank: int
    name: str
    threshold: Decimal
    discount_rate: Decimal
    benefits: str


@dataclass(frozen=True)
class MemberRate:
    """A fixed member price or a rate of the unit price (one of them)."""

    price: Decimal | None = None
    rate: Decimal | None = None

    def unit_price(self, unit_price: Decimal) -> Decimal:
        if self.price is not None:
            return min(money(self.price), unit_price)
        assert self.rate is not None
        return _discounted(unit_price, self.rate)


@dataclass(frozen=True)
class PriceTables:
    token: str
    levels: tuple[LevelInfo, ...]  # by rank, ascending
    by_sku: dict[int, dict[int, MemberRate]] = field(default_factory=dict)  # rank -> sku id -> row (inherited)
    by_category: dict[int, dict[int, MemberRate]] = field(default_factory=dict)
    has_discounts: bool = False

    def level(self, rank: int) -> LevelInfo | None:
        found = None
        for level in self.levels:
            if level.rank <= rank:
                found = level
        return found

    def rank_for_spend(self, spend: Decimal) -> int:
        """The highest level whose threshold `spend` reaches (equal is enough); 0 without any level."""
        rank = 0
        for level in self.levels:
            if spend >= level.threshold:
                rank = level.rank
        return rank

    def member_unit_price(self, *, rank: int, sku_id: int, category_id: int, unit_price: Decimal) -> Decimal:
        row = self.by_sku.get(rank, {}).get(sku_id) or self.by_category.get(rank, {}).get(category_id)
        if row is not None:
            return row.unit_price(unit_price)
        level = self.level(rank)
        if level is None:
            return unit_price
        return _discounted(unit_price, level.discount_rate)


def _discounted(unit_price: Decimal, rate: Decimal) -> Decimal:
    """The unit price at `rate`, rounded half up to the fen: never above it, never below one fen (a rate of 0.01
    on ¥0.01 would round to nothing)."""
    return min(max(money(unit_price * rate), FEN), unit_price)


def _load_tables(token: str) -> PriceTables:
    levels = tuple(LevelInfo(rank=level.rank, name=level.name, threshold=level.threshold,
                             discount_rate=level.discount_rate, benefits=level.benefits)
                   for level in MemberLevel.objects.order_by("rank"))
    own_sku: dict[int, dict[int, MemberRate]] = {}
    own_category: dict[int, dict[int, MemberRate]] = {}
    for row in MemberPrice.objects.select_related("level").order_by("level__rank"):
        rate = MemberRate(price=row.price, rate=row.discount_rate)
        if row.sku_id is not None:
            own_sku.setdefault(row.level.rank, {})[row.sku_id] = rate
        elif row.category_id is not None:
            own_category.setdefault(row.level.rank, {})[row.category_id] = rate
    by_sku: dict[int, dict[int, MemberRate]] = {}
    by_category: dict[int, dict[int, MemberRate]] = {}
    inherited_sku: dict[int, MemberRate] = {}
    inherited_category: dict[int, MemberRate] = {}
    for rank in range(0, 6):
        inherited_sku = {**inherited_sku, **own_sku.get(rank, {})}
        inherited_category = {**inherited_category, **own_category.get(rank, {})}
        by_sku[rank] = inherited_sku
        by_category[rank] = inherited_category
    has_discounts = bool(own_sku or own_category) or any(level.discount_rate < 1 for level in levels)
    return PriceTables(token=token, levels=levels, by_sku=by_sku, by_category=by_category,
                       has_discounts=has_discounts)


# The tables, checked against the shared token at most once a second; entries: buyer id -> level rank, each held
# for LEVEL_TTL_SECONDS.
_tables = VersionedProcessCache[PriceTables, int, int](
    key=_TABLES_TOKEN_KEY, load=_load_tables, check_seconds=TABLES_CHECK_SECONDS, entries_max=_LOCAL_LEVELS_MAX,
    entry_seconds=LEVEL_TTL_SECONDS)


def membership_caches_clear() -> None:
    """Forget this process's copies (tests; a fresh start)."""
    _tables.forget()


def price_tables() -> PriceTables:
    """The level and member price tables, as fresh as the shared token said within the last second."""
    return _tables.value()


def price_tables_changed() -> None:
    """Staff changed a level or a member price: every process reloads the tables (call after commit)."""
    _tables.changed()


_LEVEL_SQL = f"SELECT level_rank FROM {Membership._meta.db_table} WHERE user_id = %s"  # noqa: S608 - our own table


def _stored_level_rank(buyer_id: int) -> int:
    """The level stored on the buyer's membership row (0 without one: nothing counted yet)."""
    with connection.cursor() as cursor:
        cursor.execute(_LEVEL_SQL, [buyer_id])
        row = cursor.fetchone()
    return int(row[0]) if row is not None else 0


def buyer_level_rank(buyer_id: int) -> int:
    """The buyer's level rank (0 for a buyer with no counted spend), from the process copy when it is fresh."""
    return _tables.entry(buyer_id, _stored_level_rank)


def buyer_level_rank_seen(*, buyer_id: int, rank: int | None) -> None:
    """The buyer's stored level, read by another query (None: no membership row, i.e. 0): held as
    `buyer_level_rank` would hold it."""
    _tables.entries_set([(buyer_id, int(rank or 0))])


def buyer_levels_changed(ranks: dict[int, int]) -> None:
    """The buyers' levels are now these (call after the commit that stored them): this process uses them at once,
    the others when their copy of each is older than LEVEL_TTL_SECONDS."""
    if ranks:
        _tables.entries_set(ranks.items())


def member_unit_price(*, sku: SkuForSale, rank: int, unit_price: Decimal) -> Decimal:
    """What a buyer at `rank` pays per unit by the membership rule alone (never above `unit_price`)."""
    return price_tables().member_unit_price(rank=rank, sku_id=sku.sku_id, category_id=sku.category_id,
                                            unit_price=unit_price)


def member_price_rule(*, sku: SkuForSale, buyer_id: int, quantity: int, sales_channel: str,
                      unit_price: Decimal) -> PriceLine | None:
    """The price rule: the member price of the buyer's level as a negative line, or None. Never on a sub-site
    (分站): its price is its reseller's (kameng.resellers.pricing_subsite)."""
    if sales_channel.startswith(SUBSITE_CHANNEL_PREFIX):
        return None
    tables = price_tables()
    if not tables.has_discounts:
        return None
    rank = buyer_level_rank(buyer_id)
    member = tables.member_unit_price(rank=rank, sku_id=sku.sku_id, category_id=sku.category_id,
                                      unit_price=unit_price)
    if member >= unit_price:
        return None
    return PriceLine(code=MEMBER_LINE_CODE, label=MEMBER_LINE_LABEL, amount=member - unit_price)


def _member_rule_warm(*, buyer_id: int, sales_channel: str) -> None:
    if not sales_channel.startswith(SUBSITE_CHANNEL_PREFIX) and price_tables().has_discounts:
        buyer_level_rank(buyer_id)


member_price_rule.warm = _member_rule_warm  # type: ignore[attr-defined]  # kameng.catalog.pricing.price_rules_warm
