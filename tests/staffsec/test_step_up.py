"""Sensitive staff actions ask for the 2FA code again unless one was entered in the last few minutes: a refund over
the limit, paying or rejecting a supplier withdrawal, the tax report download. Denied without a fresh code (nothing
happens), carried through with one (the form staff filled in is not lost)."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from kameng.accounts.staff_otp import REAUTH_SESSION_KEY
from kameng.audit.models import AuditEntry
from kameng.orders.models import Order
from kameng.orders.services import order_checkout
from kameng.payments.gateways.base import RefundResult
from kameng.payments.gateways.base import RefundStatus as GatewayRefundStatus
from kameng.payments.models import AmlReview, AmlReviewStatus, Refund
from kameng.suppliers.models import SupplierWithdrawal, WithdrawalStatus
from kameng.suppliers.withdrawals import supplier_withdrawal_request
from tests.factories import SkuFactory, SupplierFactory, UserFactory, fund_wallet, staff_totp_code, stock_sku
from tests.payments.aml_support import paid_topup
from tests.payments.refund_support import FakeRefundGateway
from tests.suppliers.money_support import credit_payable, settling

pytestmark = pytest.mark.django_db
__all__ = ["settling"]


def _stale(client: Client) -> None:
    session = client.session
    session[REAUTH_SESSION_KEY] = int(time.time()) - settings.KAMENG_STAFF_REAUTH_SECONDS - 1
    session.save()


def _order(price: str) -> Order:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal(price))
    stock_sku(sku, 1)
    fund_wallet(buyer, Decimal(price))
    return order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order


def _refund(client: Client, order: Order, amount: str, **extra: str) -> object:
    return client.post(reverse("admin:orders_order_refund", args=[order.pk]),
                       {"amount": amount, "destination": "wallet", "reason": "测试", "request_id": uuid.uuid4().hex,
                        **extra})


@override_settings(KAMENG_STAFF_REAUTH_REFUND_OVER="100.00")
def test_a_refund_over_the_limit_needs_a_fresh_code(admin_client: Client) -> None:
    order = _order("300.00")
    _stale(admin_client)

    denied = _refund(admin_client, order, "300.00")

    assert denied.status_code == 403  # type: ignore[attr-defined]
    page = denied.content.decode()  # type: ignore[attr-defined]
    assert 'id="staff-reauth-form"' in page
    assert 'name="amount" value="300.00"' in page  # the form is carried through the code page
    assert Refund.objects.count() == 0
    wrong = _refund(admin_client, order, "300.00", _staff_reauth_code="000000" if staff_totp_code() != "000000"
                    else "111111")
    assert wrong.status_code == 403  # type: ignore[attr-defined]
    assert Refund.objects.count() == 0

    # (the wrong code throttles the device for a second)
    from kameng.accounts.models import StaffTOTPDevice
    StaffTOTPDevice.objects.update(throttling_failure_count=0, throttling_failure_timestamp=None)
    allowed = _refund(admin_client, order, "300.00", _staff_reauth_code=staff_totp_code())

    assert allowed.status_code == 302  # type: ignore[attr-defined]
    refund = Refund.objects.get()
    assert refund.amount == Decimal("300.00")
    entry = AuditEntry.objects.get(action="refund.create")
    assert entry.object_id == str(refund.pk)
    assert entry.after is not None
    assert entry.after["amount"] == "300.00"
    assert AuditEntry.objects.filter(action="staff_otp.reauth").count() == 1


@override_settings(KAMENG_STAFF_REAUTH_REFUND_OVER="100.00")
def test_a_refund_up_to_the_limit_needs_no_code(admin_client: Client) -> None:
    order = _order("100.00")
    _stale(admin_client)

    assert _refund(admin_client, order, "100.00").status_code == 302  # type: ignore[attr-defined]
    assert Refund.objects.count() == 1


@pytest.mark.usefixtures("settling")
def test_paying_a_withdrawal_needs_a_fresh_code(admin_client: Client) -> None:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "500.00")
    withdrawal = supplier_withdrawal_request(supplier_id=supplier.pk, amount=Decimal("300.00"), bank_name="工商银行",
                                             account_name="某某公司", account_number="6222020200112233445")
    url = reverse("admin:suppliers_supplierwithdrawal_pay", args=[withdrawal.pk])
    _stale(admin_client)

    opened = admin_client.get(url)
    assert opened.status_code == 403
    assert "6222020200112233445" not in opened.content.decode()  # the account is shown only after the code
    denied = admin_client.post(url, {"transfer_reference": "ICBC-1", "confirm": "on"})
    assert denied.status_code == 403
    assert SupplierWithdrawal.objects.get().status == WithdrawalStatus.REQUESTED

    allowed = admin_client.post(url, {"transfer_reference": "ICBC-1", "confirm": "on",
                                      "_staff_reauth_code": staff_totp_code()})

    assert allowed.status_code == 302
    assert SupplierWithdrawal.objects.get().status == WithdrawalStatus.PAID
    entry = AuditEntry.objects.get(action="supplier_withdrawal.pay")
    assert entry.before == {"status": "requested"}
    assert entry.after is not None
    assert entry.after["status"] == "paid"
    # Fresh now: the next sensitive page opens without another code.
    assert admin_client.get(reverse("admin:suppliers_supplierwithdrawal_reject", args=[withdrawal.pk])
                            ).status_code == 200


def test_the_tax_report_download_needs_a_fresh_code(admin_client: Client) -> None:
    _stale(admin_client)
    url = reverse("admin:suppliers_taxreportexport_report")

    denied = admin_client.post(url, {"quarter": "2026Q1", "file_format": "csv"})
    assert denied.status_code == 403
    assert "Content-Disposition" not in denied
    done = admin_client.post(url, {"quarter": "2026Q1", "file_format": "csv", "_staff_reauth_code": staff_totp_code()})

    assert done.status_code == 200
    assert done["Content-Disposition"].startswith("attachment;")
    assert AuditEntry.objects.filter(action="supplier_tax_report.export").count() == 1


@pytest.mark.usefixtures("settling")
def test_a_page_opened_without_a_fresh_code_comes_back_after_it(admin_client: Client) -> None:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "500.00")
    withdrawal = supplier_withdrawal_request(supplier_id=supplier.pk, amount=Decimal("300.00"), bank_name="工商银行",
                                             account_name="某某公司", account_number="6222020200112233445")
    url = reverse("admin:suppliers_supplierwithdrawal_reject", args=[withdrawal.pk])
    _stale(admin_client)

    page = admin_client.get(url).content.decode()
    assert 'name="_staff_reauth_return"' in page
    response = admin_client.post(url, {"_staff_reauth_code": staff_totp_code(), "_staff_reauth_return": "1"})

    assert response.status_code == 302
    assert response["Location"] == url
    assert SupplierWithdrawal.objects.get().status == WithdrawalStatus.REQUESTED  # nothing done by the code alone
    assert admin_client.get(url).status_code == 200


def test_rejecting_an_aml_review_over_the_limit_needs_a_fresh_code(admin_client: Client,
                                                                    refund_gateway: FakeRefundGateway) -> None:
    """Rejecting refunds ¥6,000 through the original channel: a refund over the limit like any other."""
    buyer = UserFactory.create()
    paid_topup(buyer, "6000.00")
    review = AmlReview.objects.get()
    url = reverse("admin:payments_amlreview_reject", args=[review.pk])
    _stale(admin_client)

    denied = admin_client.post(url, {"reason": "资金来源不明", "confirm": "on"})

    assert denied.status_code == 403
    page = denied.content.decode()
    assert 'id="staff-reauth-form"' in page
    assert 'name="reason" value="资金来源不明"' in page
    review.refresh_from_db()
    assert review.status == AmlReviewStatus.HELD
    assert refund_gateway.calls == []

    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.SUCCEEDED))
    done = admin_client.post(url, {"reason": "资金来源不明", "confirm": "on", "_staff_reauth_code": staff_totp_code()})

    assert done.status_code == 302
    review.refresh_from_db()
    assert (review.status, review.rejection_reason) == (AmlReviewStatus.REJECTED, "资金来源不明")
    assert len(refund_gateway.calls) == 1


def test_approving_an_aml_review_needs_no_second_code(admin_client: Client) -> None:
    """Approving moves held money into the buyer's own wallet: no money leaves, no step-up."""
    buyer = UserFactory.create()
    paid_topup(buyer, "6000.00")
    review = AmlReview.objects.get()
    _stale(admin_client)

    response = admin_client.post(reverse("admin:payments_amlreview_approve", args=[review.pk]), {"confirm": "on"})

    assert response.status_code == 302
    review.refresh_from_db()
    assert review.status == AmlReviewStatus.APPROVED


@override_settings(KAMENG_STAFF_REAUTH_REFUND_OVER="100.00")
def test_the_code_page_offers_a_way_back_without_a_code(admin_client: Client) -> None:
    order = _order("300.00")
    _stale(admin_client)
    url = reverse("admin:orders_order_refund", args=[order.pk])
    form_page = "http://testserver" + url
    data = {"amount": "300.00", "destination": "wallet", "reason": "测试", "request_id": uuid.uuid4().hex}

    came_from_form = admin_client.post(url, data, HTTP_REFERER=form_page)
    from_elsewhere = admin_client.post(url, data, HTTP_REFERER="https://evil.example/")

    assert f'href="{form_page}" data-testid="staff-reauth-cancel"' in came_from_form.content.decode()
    assert f'href="{reverse("admin:index")}" data-testid="staff-reauth-cancel"' in from_elsewhere.content.decode()
    assert Refund.objects.count() == 0
