"""Helpers for the points tests: give a buyer points as an earning would, and read points journals."""

from __future__ import annotations

from kameng.ledger import recipes
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import points_balance
from kameng.ledger.services import journal_draft_post

LISTENER = "kameng.points.services.points_aftercare"


def give_points(user_id: int, points: int, reference: str | None = None) -> None:
    journal_draft_post(draft=recipes.points_earned(reference=reference or f"gift:{user_id}:{points}", memo="测试",
                                                   user_id=user_id, points=points))


def points_journals(*kinds: JournalKind) -> list[tuple[str, str, int]]:
    """(kind, reference, points credited or debited to the buyer) of the points journals, in posting order."""
    rows = []
    for journal in Journal.objects.filter(kind__in=kinds or [
            JournalKind.POINTS_EARN, JournalKind.POINTS_EARN_REVERSAL, JournalKind.POINTS_REDEEM,
            JournalKind.POINTS_REDEEM_RETURN, JournalKind.POINTS_EXCHANGE, JournalKind.POINTS_EXPIRE,
    ]).exclude(reference__startswith="gift:").order_by("id").prefetch_related("entries"):
        amount = next(entry.amount for entry in journal.entries.all())
        rows.append((str(journal.kind), journal.reference, int(amount)))
    return rows


__all__ = ["LISTENER", "give_points", "points_balance", "points_journals"]
