"""The staff review queue: the dossier (identity masked, history, linked addresses), approve and reject pages."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from kameng.ledger.selectors import wallet_balance
from kameng.payments.aml_selectors import wallet_held_balance
from kameng.payments.gateways.base import RefundResult
from kameng.payments.gateways.base import RefundStatus as GatewayRefundStatus
from kameng.payments.models import AmlPolicy, AmlReview, AmlReviewStatus, Payment
from tests.factories import UserFactory
from tests.payments.aml_support import ID_NUMBER, REAL_NAME, paid_topup, verify
from tests.payments.refund_support import FakeRefundGateway

pytestmark = pytest.mark.django_db


def test_the_review_page_shows_a_masked_identity_history_and_linked_accounts(admin_client: Client) -> None:
    buyer = UserFactory.create(username="big-spender")
    verify(buyer)
    paid_topup(buyer, "200.00", client_ip="198.51.100.7")
    paid_topup(buyer, "8000.00", client_ip="198.51.100.7")
    neighbour = UserFactory.create(username="same-address")
    Payment.objects.filter(user=buyer).update(device_index=b"\x01" * 32)
    paid_topup(neighbour, "10.00", client_ip="198.51.100.7")
    review = AmlReview.objects.get()

    page = admin_client.get(reverse("admin:payments_amlreview_change", args=[review.pk])).content.decode()

    assert "张*三" in page
    assert "110" in page
    assert ID_NUMBER[-4:] in page
    assert ID_NUMBER not in page
    assert REAL_NAME not in page
    assert "198.51.100.7" in page
    assert "same-address" in page
    assert "0101010101" in page  # the device's blind-index prefix
    assert "¥8200.00" in page  # two successful top-ups
    queue = admin_client.get(reverse("admin:payments_amlreview_changelist") + "?status=held").content.decode()
    assert review.number in queue


def test_staff_approve_after_confirming(admin_client: Client) -> None:
    buyer = UserFactory.create()
    paid_topup(buyer, "5000.01")
    review = AmlReview.objects.get()
    url = reverse("admin:payments_amlreview_approve", args=[review.pk])

    assert "5000.01" in admin_client.get(url).content.decode()
    unconfirmed = admin_client.post(url, {})
    assert unconfirmed.status_code == 200
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    response = admin_client.post(url, {"confirm": "on"})

    assert response.status_code == 302
    review.refresh_from_db()
    assert review.status == AmlReviewStatus.APPROVED
    assert wallet_balance(user_id=buyer.pk) == Decimal("5000.01")
    again = admin_client.post(url, {"confirm": "on"})
    assert "不能再次审核" in again.content.decode()
    assert wallet_balance(user_id=buyer.pk) == Decimal("5000.01")


def test_staff_reject_with_a_reason(admin_client: Client, refund_gateway: FakeRefundGateway) -> None:
    buyer = UserFactory.create()
    paid_topup(buyer, "6000.00")
    review = AmlReview.objects.get()
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.SUCCEEDED))

    response = admin_client.post(reverse("admin:payments_amlreview_reject", args=[review.pk]),
                                 {"reason": "资金来源不明", "confirm": "on"})

    assert response.status_code == 302
    review.refresh_from_db()
    assert (review.status, review.rejection_reason) == (AmlReviewStatus.REJECTED, "资金来源不明")
    assert wallet_held_balance(user_id=buyer.pk) == Decimal("0.00")
    assert len(refund_gateway.calls) == 1


def test_staff_without_the_permission_cannot_decide(client: Client) -> None:
    buyer = UserFactory.create()
    paid_topup(buyer, "6000.00")
    review = AmlReview.objects.get()
    staff = UserFactory.create(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_amlreview"))
    client.force_login(staff)

    response = client.post(reverse("admin:payments_amlreview_approve", args=[review.pk]), {"confirm": "on"})

    assert response.status_code == 403
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")


def test_staff_edit_the_policy(admin_client: Client) -> None:
    add = admin_client.get(reverse("admin:payments_amlpolicy_add")).content.decode()
    assert "5000.00" in add
    response = admin_client.post(reverse("admin:payments_amlpolicy_add"), {
        "threshold": "8000.00", "structuring_ratio": "0.90", "structuring_count": "4",
        "structuring_daily_sum": "0", "structuring_window_hours": "12", "retention_days": "365"})
    assert response.status_code == 302
    assert AmlPolicy.objects.get().threshold == Decimal("8000.00")
    buyer = UserFactory.create()

    paid_topup(buyer, "8000.00")

    assert not AmlReview.objects.exists()
    assert wallet_balance(user_id=buyer.pk) == Decimal("8000.00")


def test_approve_and_reject_are_in_the_audit_log(admin_client: Client, refund_gateway: FakeRefundGateway) -> None:
    from kameng.audit.models import AuditEntry

    buyer = UserFactory.create()
    paid_topup(buyer, "6000.00")
    paid_topup(buyer, "7000.00")
    approved, rejected = AmlReview.objects.order_by("amount")
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.SUCCEEDED))

    admin_client.post(reverse("admin:payments_amlreview_approve", args=[approved.pk]), {"confirm": "on"})
    admin_client.post(reverse("admin:payments_amlreview_reject", args=[rejected.pk]),
                      {"reason": "资金来源不明", "confirm": "on"})

    entries = list(AuditEntry.objects.filter(action__startswith="aml_review.").order_by("id"))
    assert [(entry.action, entry.object_id, entry.actor_username) for entry in entries] == [
        ("aml_review.approve", str(approved.pk), "admin"), ("aml_review.reject", str(rejected.pk), "admin")]
    assert entries[0].before == {"status": "held"}
    assert entries[0].after == {"status": "approved", "amount": "6000.00"}
    refund = AmlReview.objects.get(pk=rejected.pk).refund
    assert refund is not None
    assert entries[1].after == {"status": "rejected", "amount": "7000.00", "reason": "资金来源不明",
                                "refund": refund.number}
