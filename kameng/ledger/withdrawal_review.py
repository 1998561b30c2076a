"""Staff review of a withdrawal (提现审核) whose money moved into review at request: paid once, or rejected once.

Suppliers' withdrawals (kameng.suppliers.withdrawals) and resellers' commission withdrawals
(kameng.resellers.commission_withdrawals) are reviewed alike: the withdrawal row is locked, the move is checked
against one table (REQUESTED → PAID or REJECTED; both final), the reviewer and the transfer reference or the reason
are stored, and one journal moves the money out (by bank transfer, outside the system) or back. Each app passes
its row lock, its journal recipe and any step of its own; the rule and the messages are here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from django.db import transaction
from django.utils import timezone

from kameng.core.errors import ApplicationError, ConflictError
from kameng.ledger.services import JournalDraft, journal_draft_post

REQUESTED, PAID, REJECTED = "requested", "paid", "rejected"
# The moves staff may make, from each state: a paid or rejected withdrawal is final. The apps' status choices use
# these values.
REVIEW_MOVES: dict[str, frozenset[str]] = {REQUESTED: frozenset({PAID, REJECTED}), PAID: frozenset(),
                                           REJECTED: frozenset()}
TRANSFER_REFERENCE_MAX = 100
REJECTION_REASON_MAX = 200


class ReviewedWithdrawal(Protocol):
    """What the review reads and writes of a withdrawal row (SupplierWithdrawal, ResellerWithdrawal)."""

    status: str
    transfer_reference: str
    rejection_reason: str
    reviewed_by_id: int | None
    reviewed_at: datetime | None

    @property
    def number(self) -> str: ...

    @property
    def amount(self) -> Decimal: ...

    def get_status_display(self) -> str: ...

    def save(self, *, update_fields: list[str]) -> None: ...


WithdrawalRow = TypeVar("WithdrawalRow", bound=ReviewedWithdrawal)


def _reviewed(*, lock: Callable[[], WithdrawalRow], to: str, noted: str, note_field: str, reviewer_id: int | None,
              journal: Callable[[WithdrawalRow, str], JournalDraft], is_reviewable: Callable[[WithdrawalRow], bool],
              then: Callable[[WithdrawalRow], object] | None) -> WithdrawalRow:
    with transaction.atomic():
        withdrawal = lock()
        if not is_reviewable(withdrawal) or to not in REVIEW_MOVES[withdrawal.status]:
            raise ConflictError("该提现申请已处理（%(status)s），不能再次审核", code="withdrawal_already_reviewed",
                                params={"status": withdrawal.get_status_display()})
        withdrawal.status = to
        setattr(withdrawal, note_field, noted)  # the transfer reference, or the reason
        withdrawal.reviewed_by_id = reviewer_id
        withdrawal.reviewed_at = timezone.now()
        withdrawal.save(update_fields=["status", note_field, "reviewed_by", "reviewed_at"])
        journal_draft_post(draft=journal(withdrawal, noted))
        if then is not None:
            then(withdrawal)
    return withdrawal


def withdrawal_review_pay(*, lock: Callable[[], WithdrawalRow], reviewer_id: int | None, transfer_reference: str,
                          journal: Callable[[WithdrawalRow, str], JournalDraft],
                          is_reviewable: Callable[[WithdrawalRow], bool] = lambda withdrawal: True,
                          then: Callable[[WithdrawalRow], object] | None = None) -> WithdrawalRow:
    """Staff paid the withdrawal by bank transfer (`transfer_reference`, the bank's serial): approve it, once.

    In one transaction: `lock()` answers the locked row; `is_reviewable(row)` false refuses it as already handled;
    `journal(row, transfer_reference)` answers the draft posted; `then(row)` is the app's own last step."""
    transfer_reference = transfer_reference.strip()
    if not transfer_reference or len(transfer_reference) > TRANSFER_REFERENCE_MAX:
        raise ApplicationError("请填写银行转账流水号（最多 100 个字符）", code="transfer_reference_missing")
    return _reviewed(lock=lock, to=PAID, noted=transfer_reference, note_field="transfer_reference",
                     reviewer_id=reviewer_id, journal=journal, is_reviewable=is_reviewable, then=then)


def withdrawal_review_reject(*, lock: Callable[[], WithdrawalRow], reviewer_id: int | None, reason: str,
                             journal: Callable[[WithdrawalRow, str], JournalDraft],
                             is_reviewable: Callable[[WithdrawalRow], bool] = lambda withdrawal: True,
                             ) -> WithdrawalRow:
    """Staff refused the withdrawal, saying why: the money goes back where it came from, once.

    In one transaction: `lock()` answers the locked row; `is_reviewable(row)` false refuses it as already handled;
    `journal(row, reason)` answers the draft posted (it may look up the owner whose balance gets the money)."""
    reason = reason.strip()
    if not reason or len(reason) > REJECTION_REASON_MAX:
        raise ApplicationError("请填写驳回原因（最多 200 个字）", code="rejection_reason_missing")
    return _reviewed(lock=lock, to=REJECTED, noted=reason, note_field="rejection_reason", reviewer_id=reviewer_id,
                     journal=journal, is_reviewable=is_reviewable, then=None)
