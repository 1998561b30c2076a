"""What suppliers' withdrawals (kameng.suppliers.withdrawals) and resellers' commission withdrawals
(kameng.resellers.commission_withdrawals) share: the check of a request's bank details and amount, and the staff
review (提现审核) of a withdrawal whose money moved into review at request — paid once, or rejected once.

The review locks the withdrawal row, checks the move against one table (REQUESTED → PAID or REJECTED; both
final), stores the reviewer and the transfer reference or the reason, and posts one journal that moves the money
out (by bank transfer, outside the system) or back. Each app passes its row lock, its journal recipe and any step
of its own; the rules and the messages are here, once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from django.db import transaction
from django.utils import timezone

from kameng.core.errors import ApplicationError, ConflictError
from kameng.core.money import grouped
from kameng.ledger.services import JournalDraft, journal_draft_post

REQUESTED, PAID, REJECTED = "requested", "paid", "rejected"
# The moves staff may make, from each state: a paid or rejected withdrawal is final. The apps' status choices use
# these values.
REVIEW_MOVES: dict[str, frozenset[str]] = {REQUESTED: frozenset({PAID, REJECTED}), PAID: frozenset(),
                                           REJECTED: frozenset()}
TRANSFER_REFERENCE_MAX = 100
REJECTION_REASON_MAX = 200


ACCOUNT_NUMBER_RE = re.compile(r"^[0-9]{8,30}$")
BANK_DETAIL_MAX = 100


def withdrawal_bank_details_checked(*, bank_name: str, account_name: str, account_number: str, amount: Decimal,
                                    minimum: Decimal) -> tuple[str, str, str]:
    """(bank name, account name, account number) as stored — trimmed, the number without spaces — or the
    refusal of a request with missing or malformed bank details or an amount below `minimum`."""
    bank_name, account_name = bank_name.strip(), account_name.strip()
    account_number = re.sub(r"\s+", "", account_number)
    if not bank_name or not account_name:
        raise ApplicationError("请填写开户银行和户名", code="bank_details_missing")
    if len(bank_name) > BANK_DETAIL_MAX or len(account_name) > BANK_DETAIL_MAX:
        raise ApplicationError("开户银行和户名最多 100 个字", code="bank_details_too_long")
    if not ACCOUNT_NUMBER_RE.match(account_number):
        raise ApplicationError("银行账号应为 8–30 位数字", code="bank_account_invalid")
    if amount < minimum:
        raise ApplicationError("提现金额不能低于 ¥%(amount)s", code="withdrawal_below_minimum",
                               params={"amount": grouped(minimum)})
    return bank_name, account_name, account_number


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
