"""kameng.ledger.withdrawals, shared by supplier and commission withdrawals: a request's bank details and amount
checked; the staff review — input checked before any lock, one move from REQUESTED (both final), the row saved, the
app's journal posted and its own step run, in that order and in one transaction. The apps' own tests
(tests/suppliers, tests/resellers) cover the money."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from kameng.core.errors import ApplicationError, ConflictError
from kameng.ledger import withdrawals
from kameng.ledger.services import JournalDraft
from kameng.ledger.withdrawals import (
    REVIEW_MOVES,
    withdrawal_bank_details_checked,
    withdrawal_review_pay,
    withdrawal_review_reject,
)
from kameng.resellers.models import ResellerWithdrawalStatus
from kameng.suppliers.models import WithdrawalStatus

pytestmark = pytest.mark.django_db
STATUS_NAMES = {"requested": "待审核", "paid": "已打款", "rejected": "已驳回"}


@dataclass
class Row:
    status: str = "requested"
    number: str = "W1"
    amount: Decimal = Decimal("10.00")
    transfer_reference: str = ""
    rejection_reason: str = ""
    reviewed_by_id: int | None = None
    reviewed_at: datetime | None = None
    saved: list[list[str]] = field(default_factory=list)

    def get_status_display(self) -> str:
        return STATUS_NAMES[self.status]

    def save(self, *, update_fields: list[str]) -> None:
        self.saved.append(update_fields)


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What happened, in order: ("lock",), ("journal", memo, in a transaction), ("then",)."""
    happened: list[Any] = []
    monkeypatch.setattr(withdrawals, "journal_draft_post", lambda *, draft: happened.append(
        ("posted", draft.memo, connection.in_atomic_block)))
    return happened


def _draft(row: Row, text: str) -> JournalDraft:
    return JournalDraft(kind="adjustment", reference=row.number, memo=f"memo {text}", legs=[])


def _locker(row: Row, steps: list[Any]) -> Any:
    def lock() -> Row:
        steps.append(("lock", row.status))
        return row
    return lock


def test_bank_details_are_trimmed_and_the_number_loses_its_spaces() -> None:
    assert withdrawal_bank_details_checked(
        bank_name=" 工商银行 ", account_name=" 张三 ", account_number="6222 0202 0011", amount=Decimal("100.00"),
        minimum=Decimal("100.00")) == ("工商银行", "张三", "622202020011")


@pytest.mark.parametrize(("fields", "code", "message"), [
    ({"bank_name": " "}, "bank_details_missing", "请填写开户银行和户名"),
    ({"account_name": ""}, "bank_details_missing", "请填写开户银行和户名"),
    ({"account_name": "名" * 101}, "bank_details_too_long", "开户银行和户名最多 100 个字"),
    ({"account_number": "1234567"}, "bank_account_invalid", "银行账号应为 8–30 位数字"),
    ({"account_number": "1" * 31}, "bank_account_invalid", "银行账号应为 8–30 位数字"),
    ({"account_number": "6222-0202"}, "bank_account_invalid", "银行账号应为 8–30 位数字"),
    ({"amount": Decimal("99.99")}, "withdrawal_below_minimum", "提现金额不能低于 ¥100.00"),
    ({"bank_name": "", "amount": Decimal("1.00")}, "bank_details_missing", "请填写开户银行和户名"),  # details first
])
def test_a_bad_request_is_refused_saying_why(fields: dict[str, Any], code: str, message: str) -> None:
    request: dict[str, Any] = {"bank_name": "工商银行", "account_name": "张三", "account_number": "62220202",
                               "amount": Decimal("100.00"), "minimum": Decimal("100.00")} | fields
    with pytest.raises(ApplicationError) as refused:
        withdrawal_bank_details_checked(**request)
    assert (refused.value.code, refused.value.message) == (code, message)


def test_the_apps_status_values_are_the_review_table_s() -> None:
    assert sorted(REVIEW_MOVES) == sorted(WithdrawalStatus.values) == sorted(ResellerWithdrawalStatus.values)


def test_pay_moves_saves_posts_then_runs_the_app_step_in_one_transaction(steps: list[Any]) -> None:
    row = Row()
    paid = withdrawal_review_pay(lock=_locker(row, steps), reviewer_id=5, transfer_reference="  ICBC-1 ",
                                 journal=_draft, then=lambda row: steps.append(("then", connection.in_atomic_block)))
    assert paid is row
    assert (row.status, row.transfer_reference, row.reviewed_by_id) == ("paid", "ICBC-1", 5)
    assert row.reviewed_at is not None
    assert row.saved == [["status", "transfer_reference", "reviewed_by", "reviewed_at"]]
    assert steps == [("lock", "requested"), ("posted", "memo ICBC-1", True), ("then", True)]


def test_reject_moves_saves_and_posts_with_the_stripped_reason(steps: list[Any]) -> None:
    row = Row()
    withdrawal_review_reject(lock=_locker(row, steps), reviewer_id=None, reason=" 户名不符 ", journal=_draft)
    assert (row.status, row.rejection_reason, row.reviewed_by_id) == ("rejected", "户名不符", None)
    assert row.saved == [["status", "rejection_reason", "reviewed_by", "reviewed_at"]]
    assert steps == [("lock", "requested"), ("posted", "memo 户名不符", True)]


@pytest.mark.parametrize("reference", ["", "   ", "R" * 101])
def test_a_missing_or_long_transfer_reference_is_refused_before_any_lock(steps: list[Any], reference: str) -> None:
    with pytest.raises(ApplicationError) as refused:
        withdrawal_review_pay(lock=_locker(Row(), steps), reviewer_id=1, transfer_reference=reference,
                              journal=_draft)
    assert (refused.value.code, refused.value.message) == ("transfer_reference_missing",
                                                           "请填写银行转账流水号（最多 100 个字符）")
    assert steps == []
    withdrawal_review_pay(lock=_locker(Row(), steps), reviewer_id=1, transfer_reference="R" * 100, journal=_draft)
    assert [step[0] for step in steps] == ["lock", "posted"]  # 100 characters are enough


@pytest.mark.parametrize("reason", ["", "  ", "因" * 201])
def test_a_missing_or_long_reason_is_refused_before_any_lock(steps: list[Any], reason: str) -> None:
    with pytest.raises(ApplicationError) as refused:
        withdrawal_review_reject(lock=_locker(Row(), steps), reviewer_id=1, reason=reason, journal=_draft)
    assert refused.value.code == "rejection_reason_missing"
    assert refused.value.message == "请填写驳回原因（最多 200 个字）"
    assert steps == []


@pytest.mark.parametrize("status", ["paid", "rejected"])
def test_a_reviewed_withdrawal_is_refused_and_nothing_is_written(steps: list[Any], status: str) -> None:
    for review in (lambda row: withdrawal_review_pay(lock=_locker(row, steps), reviewer_id=1, transfer_reference="T",
                                                     journal=_draft),
                   lambda row: withdrawal_review_reject(lock=_locker(row, steps), reviewer_id=1, reason="r",
                                                        journal=_draft)):
        row = Row(status=status)
        with pytest.raises(ConflictError) as refused:
            review(row)
        assert refused.value.code == "withdrawal_already_reviewed"
        assert refused.value.message == f"该提现申请已处理（{STATUS_NAMES[status]}），不能再次审核"
        assert (row.status, row.saved, row.reviewed_at) == (status, [], None)
    assert [step[0] for step in steps] == ["lock", "lock"]


def test_a_row_the_app_says_is_not_reviewable_is_refused_as_already_handled(steps: list[Any]) -> None:
    row = Row(status="paid")  # e.g. 转入余额, paid at once
    with pytest.raises(ConflictError) as refused:
        withdrawal_review_reject(lock=_locker(row, steps), reviewer_id=1, reason="r", journal=_draft,
                                 is_reviewable=lambda row: False)
    assert refused.value.code == "withdrawal_already_reviewed"
    requested = Row()
    with pytest.raises(ConflictError):
        withdrawal_review_pay(lock=_locker(requested, steps), reviewer_id=1, transfer_reference="T", journal=_draft,
                              is_reviewable=lambda row: False)
    assert (requested.status, requested.saved) == ("requested", [])
    assert [step[0] for step in steps] == ["lock", "lock"]
