"""Reads of membership: a buyer's level, spend and progress to the next level, and the levels' benefits."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kameng.catalog.selectors import SkuForSale
from kameng.core.money import ZERO, money
from kameng.membership.models import Membership
from kameng.membership.pricing import LevelInfo, buyer_level_rank, member_unit_price, price_tables


@dataclass(frozen=True)
class MembershipSummary:
    level: LevelInfo | None  # None when staff removed every level
    spend: Decimal
    next_level: LevelInfo | None  # None at the top level
    to_next_level: Decimal  # what is left to spend to reach it (0 at the top)
    progress_percent: int  # 0–100 of the way from this level's threshold to the next one's (100 at the top)
    levels: tuple[LevelInfo, ...]


def membership_summary(*, user_id: int) -> MembershipSummary:
    """What the buyer's membership page shows; read from the database, not the price cache."""
    tables = price_tables()
    row = Membership.objects.filter(user_id=user_id).values_list("spend", "level_rank").first()
    spend, rank = (money(row[0]), row[1]) if row else (ZERO, 0)
    level = tables.level(rank)
    next_level = next((candidate for candidate in tables.levels if candidate.rank > rank), None)
    if next_level is None:
        return MembershipSummary(level=level, spend=spend, next_level=None, to_next_level=ZERO,
                                 progress_percent=100, levels=tables.levels)
    start = level.threshold if level is not None else ZERO
    span = next_level.threshold - start
    done = spend - start
    percent = 100 if span <= 0 else int(max(ZERO, min(Decimal(100), done * 100 / span)))
    return MembershipSummary(level=level, spend=spend, next_level=next_level,
                             to_next_level=max(ZERO, money(next_level.threshold - spend)),
                             progress_percent=percent, levels=tables.levels)


def buyer_level(*, user_id: int) -> LevelInfo | None:
    """The buyer's level as the price rule sees it (the cached rank)."""
    return price_tables().level(buyer_level_rank(user_id))


def lowest_member_price(*, sku: SkuForSale) -> tuple[LevelInfo, Decimal] | None:
    """The lowest unit price any level gets by the membership rule (retail price in, floor price applied), and the
    lowest level that gets it; None when no level pays less than retail. For the hint shown to visitors."""
    tables = price_tables()
    base = money(sku.price)
    best: tuple[LevelInfo, Decimal] | None = None
    for level in tables.levels:
        price = member_unit_price(sku=sku, rank=level.rank, unit_price=base)
        if sku.floor_price is not None:
            price = max(price, money(sku.floor_price))
        if price < base and (best is None or price < best[1]):
            best = (level, price)
    return best
