"""AML review (反洗钱) of wallet top-ups: the threshold, the held balance, approve / reject and their money."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kameng.core.errors import ConflictError
from kameng.ledger.models import AccountKind, Journal, JournalKind
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.payments.aml import aml_identities_purge, aml_review_approve, aml_review_refund_again, aml_review_reject
from kameng.payments.aml_selectors import wallet_held_balance
from kameng.payments.gateways.base import RefundResult
from kameng.payments.gateways.base import RefundStatus as GatewayRefundStatus
from kameng.payments.models import (
    AmlReason,
    AmlReview,
    AmlReviewStatus,
    NotificationOutcome,
    Payment,
    PaymentStatus,
    RefundStatus,
)
from kameng.payments.services import payment_credit
from tests.factories import UserFactory
from tests.payments.aml_support import ID_NUMBER, REAL_NAME, paid_topup, topup, verify
from tests.payments.refund_support import FakeRefundGateway

pytestmark = pytest.mark.django_db


def _clearing_journals(payment: Payment) -> int:
    return Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count()


def test_exactly_the_threshold_is_credited_to_the_wallet() -> None:
    buyer = UserFactory.create()

    payment = paid_topup(buyer, "5000.00")

    assert wallet_balance(user_id=buyer.pk) == Decimal("5000.00")
    assert wallet_held_balance(user_id=buyer.pk) == Decimal("0.00")
    assert not AmlReview.objects.exists()
    assert _clearing_journals(payment) == 1


def test_one_fen_above_the_threshold_is_held_for_review() -> None:
    buyer = UserFactory.create()
    verify(buyer)

    payment = paid_topup(buyer, "5000.01", client_ip="203.0.113.9")

    assert payment.status == PaymentStatus.SUCCEEDED
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    assert wallet_held_balance(user_id=buyer.pk) == Decimal("5000.01")
    review = AmlReview.objects.get()
    assert (review.payment_id, review.user_id, review.amount, review.status, review.reason) == (
        payment.pk, buyer.pk, Decimal("5000.01"), AmlReviewStatus.HELD, AmlReason.SINGLE_OVER_THRESHOLD)
    assert "5,000.00" in review.reason_detail
    # The identity at the time is kept, encrypted, with the review.
    assert (review.identity_status, review.identity_name, review.identity_id_number) == (
        "verified", REAL_NAME, ID_NUMBER)
    journal = Journal.objects.get(kind=JournalKind.WALLET_TOPUP, reference=payment.number)
    held = journal.entries.get(side="C")
    assert (held.account.kind, held.account.owner_id, held.amount) == (
        AccountKind.WALLET_HOLD, buyer.pk, Decimal("5000.01"))


def test_an_order_payment_above_the_threshold_is_not_a_topup_and_not_held() -> None:
    from tests.payments.refund_support import order_paid_by_channel

    _order, payment = order_paid_by_channel(price="6000.00")

    assert not AmlReview.objects.exists()
    assert wallet_held_balance(user_id=payment.user_id) == Decimal("0.00")


def test_duplicate_notifications_for_a_held_topup_credit_nothing_twice() -> None:
    buyer = UserFactory.create()
    payment = paid_topup(buyer, "8000.00")

    for _ in range(3):
        outcome, _, _ = payment_credit(channel=payment.channel, out_trade_no=payment.number, amount=payment.amount,
                                       gateway_trade_no="again")
        assert outcome == NotificationOutcome.DUPLICATE

    assert AmlReview.objects.count() == 1
    assert _clearing_journals(payment) == 1
    assert wallet_held_balance(user_id=buyer.pk) == Decimal("8000.00")
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")


def test_approve_releases_the_exact_amount_into_the_wallet() -> None:
    buyer = UserFactory.create()
    staff = UserFactory.create(is_staff=True)
    paid_topup(buyer, "6543.21")
    review = AmlReview.objects.get()

    approved = aml_review_approve(review_id=review.pk, staff_id=staff.pk)

    assert (approved.status, approved.reviewed_by_id) == (AmlReviewStatus.APPROVED, staff.pk)
    assert wallet_balance(user_id=buyer.pk) == Decimal("6543.21")
    assert wallet_held_balance(user_id=buyer.pk) == Decimal("0.00")
    assert Journal.objects.filter(kind=JournalKind.AML_TOPUP_RELEASED, reference=review.number).count() == 1


def test_approve_twice_is_refused_and_moves_nothing() -> None:
    buyer = UserFactory.create()
    paid_topup(buyer, "6000.00")
    review = AmlReview.objects.get()
    aml_review_approve(review_id=review.pk, staff_id=None)

    with pytest.raises(ConflictError) as refused:
        aml_review_approve(review_id=review.pk, staff_id=None)

    assert refused.value.code == "aml_review_decided"
    assert wallet_balance(user_id=buyer.pk) == Decimal("6000.00")
    assert Journal.objects.filter(kind=JournalKind.AML_TOPUP_RELEASED).count() == 1


def test_reject_refunds_the_exact_amount_through_the_channel(refund_gateway: FakeRefundGateway) -> None:
    buyer = UserFactory.create()
    payment = paid_topup(buyer, "7000.50")
    review = AmlReview.objects.get()
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.SUCCEEDED, gateway_refund_no="RF9"))

    rejected = aml_review_reject(review_id=review.pk, staff_id=None, reason="资金来源不明")

    assert (rejected.status, rejected.rejection_reason) == (AmlReviewStatus.REJECTED, "资金来源不明")
    refund = rejected.refund
    assert refund is not None
    assert (refund.status, refund.amount, refund.order_id, refund.payment_id, refund.gateway_refund_no) == (
        RefundStatus.SUCCEEDED, Decimal("7000.50"), None, payment.pk, "RF9")
    assert len(refund_gateway.calls) == 1
    call = refund_gateway.calls[0]
    assert (call["out_trade_no"], call["refund_no"], call["amount"], call["total_amount"]) == (
        payment.number, refund.number, Decimal("7000.50"), Decimal("7000.50"))
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("7000.50")
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    assert wallet_held_balance(user_id=buyer.pk) == Decimal("0.00")
    assert Journal.objects.filter(kind=JournalKind.AML_TOPUP_REFUNDED, reference=refund.number).count() == 1


def test_approve_after_reject_and_reject_twice_are_refused(refund_gateway: FakeRefundGateway) -> None:
    buyer = UserFactory.create()
    paid_topup(buyer, "9000.00")
    review = AmlReview.objects.get()
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.SUCCEEDED))
    aml_review_reject(review_id=review.pk, staff_id=None, reason="拒绝")

    with pytest.raises(ConflictError):
        aml_review_approve(review_id=review.pk, staff_id=None)
    with pytest.raises(ConflictError):
        aml_review_reject(review_id=review.pk, staff_id=None, reason="再次")

    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    assert len(refund_gateway.calls) == 1
    assert not Journal.objects.filter(kind=JournalKind.AML_TOPUP_RELEASED).exists()


def test_a_refused_refund_goes_back_to_the_hold_not_the_wallet_and_can_be_sent_again(
        refund_gateway: FakeRefundGateway) -> None:
    buyer = UserFactory.create()
    payment = paid_topup(buyer, "5500.00")
    review = AmlReview.objects.get()
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.FAILED, message="交易已超过退款期限"))

    rejected = aml_review_reject(review_id=review.pk, staff_id=None, reason="来源不明")

    assert rejected.refund is not None
    assert rejected.refund.status == RefundStatus.FAILED
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    assert wallet_held_balance(user_id=buyer.pk) == Decimal("5500.00")
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("0.00")

    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.SUCCEEDED))
    again = aml_review_refund_again(review_id=review.pk, staff_id=None)

    assert again.refund is not None
    assert again.refund.status == RefundStatus.SUCCEEDED
    assert again.refund.pk != rejected.refund.pk
    assert wallet_held_balance(user_id=buyer.pk) == Decimal("0.00")
    with pytest.raises(ConflictError):
        aml_review_refund_again(review_id=review.pk, staff_id=None)


def test_reject_needs_a_reason() -> None:
    buyer = UserFactory.create()
    paid_topup(buyer, "5000.01")
    review = AmlReview.objects.get()

    with pytest.raises(Exception, match="驳回原因"):
        aml_review_reject(review_id=review.pk, staff_id=None, reason="  ")

    review.refresh_from_db()
    assert review.status == AmlReviewStatus.HELD


def test_the_identity_snapshot_is_purged_after_the_retention_period() -> None:
    buyer = UserFactory.create()
    verify(buyer)
    paid_topup(buyer, "6000.00")
    paid_topup(buyer, "7000.00")
    old, recent = AmlReview.objects.order_by("pk")
    aml_review_approve(review_id=old.pk, staff_id=None)
    aml_review_approve(review_id=recent.pk, staff_id=None)
    AmlReview.objects.filter(pk=old.pk).update(reviewed_at=timezone.now() - timedelta(days=1096))

    assert aml_identities_purge() == 1

    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.identity_name, old.identity_id_number) == (None, None)
    assert old.identity_purged_at is not None
    assert recent.identity_id_number == ID_NUMBER
    assert aml_identities_purge() == 0


def test_the_buyer_sees_under_review_and_the_reason(client: Client) -> None:
    buyer = UserFactory.create()
    paid_topup(buyer, "100.00")
    payment = paid_topup(buyer, "5000.01")
    client.force_login(buyer)

    status = client.get(reverse("web:topup_status", args=[payment.number])).content.decode()
    wallet = client.get(reverse("web:wallet")).content.decode()

    assert "审核中" in status
    assert "单笔充值 ¥5,000.01 超过 ¥5,000.00" in status
    assert "已到账" not in status
    assert 'data-testid="wallet-held"' in wallet
    assert "5,000.01" in wallet
    assert "审核中" in wallet
    assert "¥100.00" in wallet  # the spendable balance, apart from the held amount


def test_the_buyer_sees_the_rejection_reason(client: Client, refund_gateway: FakeRefundGateway) -> None:
    buyer = UserFactory.create()
    payment = paid_topup(buyer, "6000.00")
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.SUCCEEDED))
    aml_review_reject(review_id=AmlReview.objects.get().pk, staff_id=None, reason="无法核实资金来源")
    client.force_login(buyer)

    status = client.get(reverse("web:topup_status", args=[payment.number])).content.decode()

    assert "审核未通过" in status
    assert "无法核实资金来源" in status
    assert "已原路退回" in status


def test_another_buyer_cannot_see_the_review() -> None:
    owner = UserFactory.create()
    payment = paid_topup(owner, "6000.00")
    stranger = Client()
    stranger.force_login(UserFactory.create())

    assert stranger.get(reverse("web:topup_status", args=[payment.number])).status_code == 404


def test_ledger_is_consistent_after_every_path(refund_gateway: FakeRefundGateway) -> None:
    buyer = UserFactory.create()
    paid_topup(buyer, "6000.00")
    paid_topup(buyer, "7000.00")
    first, second = AmlReview.objects.order_by("pk")
    aml_review_approve(review_id=first.pk, staff_id=None)
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.SUCCEEDED))
    aml_review_reject(review_id=second.pk, staff_id=None, reason="x")

    assert ledger_problems() == []
    assert wallet_balance(user_id=buyer.pk) == Decimal("6000.00")


def test_a_pending_topup_is_not_reviewed_before_it_is_paid() -> None:
    buyer = UserFactory.create()
    topup(buyer, "9999.00")

    assert not AmlReview.objects.exists()
