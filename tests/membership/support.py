"""Helpers of the membership tests: a known level table and members placed at a spend."""

from __future__ import annotations

from decimal import Decimal

from kameng.accounts.models import User
from kameng.membership.models import MemberLevel, Membership
from kameng.membership.pricing import price_tables_changed

# (rank, name, threshold, rate): VIP4 = 95折 as the issue says; VIP0 pays retail.
LEVELS = [
    (0, "VIP0", "0.00", "1.000"),
    (1, "VIP1", "100.00", "0.990"),
    (2, "VIP2", "500.00", "0.980"),
    (3, "VIP3", "2000.00", "0.970"),
    (4, "VIP4", "5000.00", "0.950"),
    (5, "VIP5", "20000.00", "0.920"),
]


def levels_install() -> None:
    """Replace the levels with `LEVELS` (a transactional test's flush leaves none; others find the seeded ones)."""
    MemberLevel.objects.all().delete()
    MemberLevel.objects.bulk_create([
        MemberLevel(rank=rank, name=name, threshold=Decimal(threshold), discount_rate=Decimal(rate),
                    benefits=f"{name} 权益")
        for rank, name, threshold, rate in LEVELS])
    price_tables_changed()


def member_at(user: User, spend: str, rank: int) -> None:
    """Place the buyer at a spend and level directly, as counted orders would have."""
    Membership.objects.update_or_create(user=user, defaults={"spend": Decimal(spend), "level_rank": rank})
    price_tables_changed()  # forget cached levels too
