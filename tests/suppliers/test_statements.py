"""Monthly statements: exact figures per calendar month (Asia/Shanghai), consistent with the ledger (closing =
opening + net − withdrawals), and the CSV/XLSX files carry the same figures."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from kameng.ledger.models import Journal
from kameng.suppliers.exports import Cell, table_csv, table_xlsx, xlsx_rows
from kameng.suppliers.models import Supplier, SupplierWithdrawal
from kameng.suppliers.statements import (
    supplier_monthly_statement,
    supplier_statement_lines,
    supplier_statement_months,
)
from kameng.suppliers.withdrawals import supplier_withdrawal_reject, supplier_withdrawal_request
from tests.factories import SupplierFactory, UserFactory
from tests.suppliers.money_support import Capture, card_key_order, refund, settling

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("settling")]
__all__ = ["settling"]
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _at(reference_contains: str, when: datetime) -> None:
    """Move the journals whose reference contains the text to `when` (as if they had been posted then)."""
    Journal.objects.filter(reference__contains=reference_contains).update(created_at=when)


def _withdraw(supplier: Supplier, amount: str) -> SupplierWithdrawal:
    return supplier_withdrawal_request(supplier_id=supplier.pk, amount=Decimal(amount), bank_name="招商银行",
                                       account_name="某某公司", account_number="6214830100001234")


def _story(capture: Capture, settings: object) -> Supplier:
    """January: two orders delivered (97.00 and 50.00 at 3%). February: one refunded half, 90.00 withdrawn.
    March: that withdrawal rejected, 30.00 withdrawn."""
    settings.KAMENG_SUPPLIER_WITHDRAWAL_MIN = "1.00"  # type: ignore[attr-defined]
    supplier = SupplierFactory.create(tax_rate=Decimal("0.03"))
    first = card_key_order(capture, supplier=supplier, cost="97.00", request_id="a")
    second = card_key_order(capture, supplier=supplier, cost="50.00", price="60.00", request_id="b")
    _at(first.number, datetime(2026, 1, 10, 12, tzinfo=SHANGHAI))
    _at(second.number, datetime(2026, 1, 31, 23, 59, tzinfo=SHANGHAI))
    refund(capture, first, "50.00", "rf-1")  # kept half → cost 48.50, tax 1.46: 48.50 back, 1.45 of it tax
    _at(f"{first.number}:supplier:{supplier.pk}:2", datetime(2026, 2, 1, 0, 0, tzinfo=SHANGHAI))
    big = _withdraw(supplier, "90.00")
    _at(big.number, datetime(2026, 2, 15, tzinfo=SHANGHAI))
    admin = UserFactory.create(is_staff=True)
    supplier_withdrawal_reject(withdrawal_id=big.pk, reviewer_id=admin.pk, reason="户名与认证主体不一致")
    Journal.objects.filter(reference=big.number, kind="supplier_withdrawal_rejected").update(
        created_at=datetime(2026, 3, 2, tzinfo=SHANGHAI))
    small = _withdraw(supplier, "30.00")
    _at(small.number, datetime(2026, 3, 5, tzinfo=SHANGHAI))
    return supplier


def test_each_month_has_exact_figures_and_closing_equals_opening_plus_net_minus_withdrawals(
        django_capture_on_commit_callbacks: Capture, settings: object) -> None:
    supplier = _story(django_capture_on_commit_callbacks, settings)

    january = supplier_monthly_statement(supplier=supplier, month=date(2026, 1, 1))
    february = supplier_monthly_statement(supplier=supplier, month=date(2026, 2, 1))
    march = supplier_monthly_statement(supplier=supplier, month=date(2026, 3, 1))

    assert (january.orders_delivered, january.gross_cost, january.tax_withheld, january.net) == (
        2, Decimal("147.00"), Decimal("4.41"), Decimal("142.59"))  # 2.91 + 1.50
    assert (january.opening_payable, january.closing_payable) == (Decimal("0.00"), Decimal("142.59"))
    assert (february.orders_delivered, february.reversed_cost, february.reversed_tax) == (
        0, Decimal("48.50"), Decimal("1.45"))  # tax 2.91 → 1.46 on 48.50
    assert (february.net, february.withdrawals) == (Decimal("-47.05"), Decimal("90.00"))
    assert (february.opening_payable, february.closing_payable) == (Decimal("142.59"), Decimal("5.54"))
    assert (march.withdrawals_requested, march.withdrawals_rejected, march.withdrawals) == (
        Decimal("30.00"), Decimal("90.00"), Decimal("-60.00"))
    assert march.closing_payable == Decimal("65.54")  # 142.59 − 47.05 − 30.00
    for statement in (january, february, march):
        assert statement.closing_payable == statement.opening_payable + statement.net - statement.withdrawals
        assert (statement.opening_debt, statement.closing_debt) == (Decimal("0.00"), Decimal("0.00"))
    assert february.opening_payable == january.closing_payable
    assert march.opening_payable == february.closing_payable


def test_the_lines_of_a_month_add_up_to_its_statement(django_capture_on_commit_callbacks: Capture,
                                                      settings: object) -> None:
    supplier = _story(django_capture_on_commit_callbacks, settings)

    lines = supplier_statement_lines(supplier=supplier, month=date(2026, 2, 1))

    assert [(line.kind, line.cost, line.tax, line.payable) for line in lines] == [
        ("退款冲回", Decimal("-48.50"), Decimal("-1.45"), Decimal("-47.05")),
        ("供货商提现申请", Decimal("0.00"), Decimal("0.00"), Decimal("-90.00")),
    ]
    assert supplier_statement_months(supplier=supplier)[-1] == date(2026, 1, 1)


def test_a_month_without_movements_carries_the_balance(django_capture_on_commit_callbacks: Capture,
                                                       settings: object) -> None:
    supplier = _story(django_capture_on_commit_callbacks, settings)

    april = supplier_monthly_statement(supplier=supplier, month=date(2026, 4, 1))

    assert (april.orders_delivered, april.net, april.withdrawals) == (0, Decimal("0.00"), Decimal("0.00"))
    assert april.opening_payable == april.closing_payable == Decimal("65.54")


def test_exports_hold_the_same_cells() -> None:
    rows: list[list[Cell]] = [["月份", "成本"], ["2026-01", Decimal("147.00")], ["=HYPERLINK()", 3]]

    assert xlsx_rows(table_xlsx(rows)) == [["月份", "成本"], ["2026-01", "147.00"], ["=HYPERLINK()", "3"]]
    assert table_csv(rows).decode("utf-8-sig").splitlines() == ["月份,成本", "2026-01,147.00", "'=HYPERLINK(),3"]
