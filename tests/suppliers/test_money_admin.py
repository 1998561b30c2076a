"""Staff review supplier withdrawals on confirmation pages (paid with a transfer reference, or rejected with a
reason, once), and export the quarterly tax report (preview masked, download logged); others are refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kameng.accounts.models import RealName, RealNameStatus
from kameng.ledger.models import AccountKind
from kameng.suppliers.exports import xlsx_rows
from kameng.suppliers.models import Supplier, SupplierWithdrawal, TaxReportExport, WithdrawalStatus
from kameng.suppliers.withdrawals import supplier_withdrawal_request
from tests.accounts.ids import id_number
from tests.factories import SupplierFactory, UserFactory
from tests.suppliers.money_support import Capture, balance, card_key_order, credit_payable, settling

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("settling")]
__all__ = ["settling"]
ACCOUNT = "6222020200112233445"


def _requested(reference: str = "test-credit") -> tuple[Supplier, SupplierWithdrawal]:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "500.00", reference=reference)
    withdrawal = supplier_withdrawal_request(supplier_id=supplier.pk, amount=Decimal("300.00"), bank_name="工商银行",
                                             account_name="某某公司", account_number=ACCOUNT)
    return supplier, withdrawal


def test_staff_pay_a_withdrawal_after_confirming(admin_client: Client) -> None:
    _, withdrawal = _requested()
    url = reverse("admin:suppliers_supplierwithdrawal_pay", args=[withdrawal.pk])
    change = admin_client.get(reverse("admin:suppliers_supplierwithdrawal_change", args=[withdrawal.pk]))
    assert url in change.content.decode()
    assert ACCOUNT not in change.content.decode()
    page = admin_client.get(url).content.decode()
    assert ACCOUNT in page  # the payer needs the number to pay it
    assert "每笔申请只能审核一次" in page
    assert 'id="withdrawal-review-form"' in page

    unconfirmed = admin_client.post(url, {"transfer_reference": "ICBC-1"})
    assert unconfirmed.status_code == 200
    assert SupplierWithdrawal.objects.get().status == WithdrawalStatus.REQUESTED

    response = admin_client.post(url, {"transfer_reference": "ICBC-1", "confirm": "on"})

    assert response.status_code == 302
    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.transfer_reference) == (WithdrawalStatus.PAID, "ICBC-1")
    again = admin_client.post(url, {"transfer_reference": "ICBC-2", "confirm": "on"})
    assert "已处理" in again.content.decode()
    withdrawal.refresh_from_db()
    assert withdrawal.transfer_reference == "ICBC-1"


def test_staff_reject_a_withdrawal_and_the_money_goes_back(admin_client: Client) -> None:
    supplier, withdrawal = _requested()

    response = admin_client.post(reverse("admin:suppliers_supplierwithdrawal_reject", args=[withdrawal.pk]),
                                 {"reason": "户名与认证主体不一致"})

    assert response.status_code == 302
    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.rejection_reason) == (WithdrawalStatus.REJECTED, "户名与认证主体不一致")
    assert balance(supplier, AccountKind.SUPPLIER_PAYABLE) == Decimal("500.00")


def test_staff_without_the_permission_cannot_review_or_export(client: Client) -> None:
    supplier, withdrawal = _requested()
    client.force_login(UserFactory.create(is_staff=True))

    response = client.post(reverse("admin:suppliers_supplierwithdrawal_pay", args=[withdrawal.pk]),
                           {"transfer_reference": "X", "confirm": "on"})
    export = client.post(reverse("admin:suppliers_taxreportexport_report"), {"quarter": "2026Q4",
                                                                            "file_format": "csv"})

    assert response.status_code == 403
    assert export.status_code == 403
    assert SupplierWithdrawal.objects.get().status == WithdrawalStatus.REQUESTED
    assert balance(supplier, AccountKind.SUPPLIER_PAYABLE) == Decimal("200.00")
    assert TaxReportExport.objects.count() == 0


def test_the_tax_report_previews_masked_and_downloads_full_logged(
        admin_client: Client, django_capture_on_commit_callbacks: Capture) -> None:
    supplier = SupplierFactory.create(name="甲供货商", tax_rate=Decimal("0.03"))
    number = id_number()
    RealName.objects.create(user_id=supplier.owner_id, status=RealNameStatus.VERIFIED, name="张小三",
                            id_number=number)
    order = card_key_order(django_capture_on_commit_callbacks, supplier=supplier, cost="97.00")
    day = timezone.localtime(order.created_at)
    quarter = f"{day.year}Q{(day.month - 1) // 3 + 1}"
    url = reverse("admin:suppliers_taxreportexport_report")

    listing = admin_client.get(reverse("admin:suppliers_taxreportexport_changelist")).content.decode()
    assert reverse("admin:suppliers_taxreportexport_open_report") in listing
    preview = admin_client.get(url, {"quarter": quarter, "file_format": "xlsx"}).content.decode()
    download = admin_client.post(url, {"quarter": quarter, "file_format": "xlsx"})

    assert "甲供货商" in preview
    assert number not in preview
    assert number[-4:] in preview
    assert TaxReportExport.objects.count() == 1
    assert download["Content-Disposition"] == f'attachment; filename="SENSITIVE-supplier-tax-report-{quarter}.xlsx"'
    assert xlsx_rows(download.content)[2][:4] == ["甲供货商", "", "张小三", number]


def test_a_processed_withdrawal_shows_its_outcome_read_only_not_the_forms(admin_client: Client) -> None:
    _, paid = _requested()
    admin_client.post(reverse("admin:suppliers_supplierwithdrawal_pay", args=[paid.pk]),
                      {"transfer_reference": "ICBC-1", "confirm": "on"})
    _, rejected = _requested(reference="test-credit-2")
    admin_client.post(reverse("admin:suppliers_supplierwithdrawal_reject", args=[rejected.pk]),
                      {"reason": "户名与认证主体不一致"})

    for withdrawal, shown in ((paid, "ICBC-1"), (rejected, "户名与认证主体不一致")):
        for name in ("pay", "reject"):
            page = admin_client.get(reverse(f"admin:suppliers_supplierwithdrawal_{name}", args=[withdrawal.pk]))
            text = page.content.decode()
            assert page.status_code == 200
            assert 'id="withdrawal-review-form"' not in text
            assert 'name="transfer_reference"' not in text
            assert 'name="reason"' not in text
            assert 'data-testid="withdrawal-outcome"' in text
            assert shown in text
            assert "这笔提现已处理，不能再次审核" in text
            assert ACCOUNT not in text  # nothing left to pay: the number stays masked
    # A review posted from a page kept open changes nothing.
    admin_client.post(reverse("admin:suppliers_supplierwithdrawal_reject", args=[paid.pk]), {"reason": "迟到的驳回"})
    paid.refresh_from_db()
    assert (paid.status, paid.rejection_reason) == (WithdrawalStatus.PAID, "")
