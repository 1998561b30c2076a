"""The quarterly tax report: exact figures per supplier across a quarter boundary in Asia/Shanghai, identity from the
owner's verified real name in full in the file (masked elsewhere), every export logged."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from kameng.accounts.models import RealName, RealNameStatus
from kameng.core.errors import ApplicationError
from kameng.ledger.models import Journal
from kameng.suppliers.exports import xlsx_rows
from kameng.suppliers.models import Supplier, TaxReportExport
from kameng.suppliers.tax_report import quarter_bounds, tax_report_export, tax_report_rows
from kameng.suppliers.withdrawals import supplier_withdrawal_pay, supplier_withdrawal_request
from tests.accounts.ids import id_number
from tests.factories import SupplierFactory, UserFactory
from tests.suppliers.money_support import Capture, card_key_order, refund, settling

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("settling")]
__all__ = ["settling"]
SHANGHAI = ZoneInfo("Asia/Shanghai")
NUMBER = id_number()


def _verified(supplier: Supplier) -> None:
    RealName.objects.create(user_id=supplier.owner_id, status=RealNameStatus.VERIFIED, name="张小三",
                            id_number=NUMBER)


def _at(text: str, when: datetime) -> None:
    Journal.objects.filter(reference__contains=text).update(created_at=when)


def _boundary(capture: Capture, settings: object) -> tuple[Supplier, Supplier]:
    """Supplier A: 97.00 at 3% delivered 03-31 23:59, 50.00 delivered 04-01 00:00 and refunded 20% on 04-02, 40.00
    paid out 04-03. Supplier B (no real name): 10.00 at 1% on 04-15."""
    settings.KAMENG_SUPPLIER_WITHDRAWAL_MIN = "1.00"  # type: ignore[attr-defined]
    a = SupplierFactory.create(name="甲供货商", tax_rate=Decimal("0.03"))
    _verified(a)
    b = SupplierFactory.create(name="乙供货商", tax_rate=Decimal("0.01"))
    march = card_key_order(capture, supplier=a, cost="97.00", request_id="m")
    _at(march.number, datetime(2026, 3, 31, 23, 59, tzinfo=SHANGHAI))
    april = card_key_order(capture, supplier=a, cost="50.00", price="60.00", request_id="a")
    _at(april.number, datetime(2026, 4, 1, 0, 0, tzinfo=SHANGHAI))
    refund(capture, april, "12.00", "rf-1")  # kept 80% → cost 40.00, tax 1.20
    _at(f"{april.number}:supplier:{a.pk}:2", datetime(2026, 4, 2, tzinfo=SHANGHAI))
    withdrawal = supplier_withdrawal_request(supplier_id=a.pk, amount=Decimal("40.00"), bank_name="工商银行",
                                             account_name="张小三", account_number="6222020200112233445")
    staff = UserFactory.create(is_staff=True)
    supplier_withdrawal_pay(withdrawal_id=withdrawal.pk, reviewer_id=staff.pk, transfer_reference="T-1")
    _at(withdrawal.number, datetime(2026, 4, 3, tzinfo=SHANGHAI))
    other = card_key_order(capture, supplier=b, cost="10.00", price="12.00", request_id="b")
    _at(other.number, datetime(2026, 4, 15, tzinfo=SHANGHAI))
    return a, b


def test_quarters_split_at_midnight_shanghai_time(django_capture_on_commit_callbacks: Capture,
                                                  settings: object) -> None:
    a, b = _boundary(django_capture_on_commit_callbacks, settings)

    first = tax_report_rows(quarter="2026Q1")
    second = tax_report_rows(quarter="2026Q2")

    assert [(row.supplier_id, row.income, row.refunds, row.tax_withheld, row.net_income, row.paid_out)
            for row in first] == [(a.pk, Decimal("97.00"), Decimal("0.00"), Decimal("2.91"), Decimal("94.09"),
                                   Decimal("0.00"))]
    assert [(row.supplier_id, row.income, row.refunds, row.tax_withheld, row.net_income, row.paid_out)
            for row in second] == [
        (a.pk, Decimal("50.00"), Decimal("10.00"), Decimal("1.20"), Decimal("38.80"), Decimal("40.00")),
        (b.pk, Decimal("10.00"), Decimal("0.00"), Decimal("0.10"), Decimal("9.90"), Decimal("0.00")),
    ]
    assert tax_report_rows(quarter="2026Q3") == []


def test_the_file_holds_the_full_id_number_and_the_export_is_logged(django_capture_on_commit_callbacks: Capture,
                                                                    settings: object) -> None:
    _boundary(django_capture_on_commit_callbacks, settings)
    staff = UserFactory.create(is_staff=True)

    report = tax_report_export(quarter="2026q2", file_format="xlsx", exported_by_id=staff.pk, via="admin")

    rows = xlsx_rows(report.content)
    assert rows[1][:4] == ["供货商名称", "统一社会信用代码", "法定代表人/实名姓名", "证件号码"]
    assert rows[2] == ["甲供货商", "", "张小三", NUMBER, "账号实名", "50.00", "10.00", "1.20", "38.80", "40.00"]
    assert rows[3] == ["乙供货商", "", "", "", "缺失", "10.00", "0.00", "0.10", "9.90", "0.00"]
    assert report.filename == "SENSITIVE-supplier-tax-report-2026Q2.xlsx"
    log = TaxReportExport.objects.get()
    assert (log.quarter, log.file_format, log.exported_by_id, log.via, log.rows) == ("2026Q2", "xlsx", staff.pk,
                                                                                    "admin", 2)


def test_the_command_writes_a_private_csv(django_capture_on_commit_callbacks: Capture, settings: object,
                                          tmp_path: Path) -> None:
    _boundary(django_capture_on_commit_callbacks, settings)
    target = tmp_path / "q1.csv"

    call_command("supplier_tax_report", "--quarter", "2026Q1", "--format", "csv", "--output", str(target),
                 stdout=io.StringIO())

    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert rows[2] == ["甲供货商", "", "张小三", NUMBER, "账号实名", "97.00", "0.00", "2.91", "94.09", "0.00"]
    assert target.stat().st_mode & 0o777 == 0o600
    assert TaxReportExport.objects.get().via == "command"


def test_a_bad_quarter_is_refused_and_nothing_is_logged() -> None:
    with pytest.raises(CommandError):
        call_command("supplier_tax_report", "--quarter", "2026Q5", stdout=io.StringIO())
    with pytest.raises(ApplicationError):
        tax_report_export(quarter="Q4", file_format="csv", exported_by_id=None, via="admin")
    assert TaxReportExport.objects.count() == 0


def test_quarter_bounds_are_local_midnight() -> None:
    start, end = quarter_bounds("2026Q4")
    assert (start, end) == (datetime(2026, 10, 1, tzinfo=SHANGHAI), datetime(2027, 1, 1, tzinfo=SHANGHAI))
    assert quarter_bounds("2026Q1")[1].isoformat() == "2026-04-01T00:00:00+08:00"
