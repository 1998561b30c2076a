"""AML review of wallet top-ups (反洗钱): which top-ups are held, and staff's decision on each.

A wallet top-up above the policy's threshold (not equal to it), or one that completes a structuring pattern (many
top-ups just under the threshold, or several summing above a daily limit, in a window), is credited when its money
arrives to the buyer's held top-ups (ledger WALLET_HOLD, per owner), not to the wallet: it cannot be spent. An
`AmlReview` records why, with the buyer's verified identity at that moment (encrypted). Staff then approve (held →
wallet, one journal) or reject with a reason (held → refunded through the original channel with a `Refund` that
has no order, sent to the gateway after commit by kameng.payments.refunds; if the gateway refuses, the money comes
back to the hold, never to the wallet, and staff send it again).

Deciding is part of crediting (kameng.payments.services.payment_credit), in its transaction, after the payment row
and then the buyer's wallet row are locked (kameng.payments.locks): two top-ups of one buyer credited at the same
moment are decided one after the other, so a pattern completed by either is seen. A review is decided exactly once
under its row lock; the ledger's (kind, reference) uniqueness is the last guard.

The policy is the staff-edited `AmlPolicy` row, or the KAMENG_AML_* settings when there is none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from kameng.accounts.models import RealName, RealNameStatus
from kameng.core.crypto import blind_index
from kameng.core.errors import ApplicationError, ConflictError
from kameng.core.ids import public_number
from kameng.core.money import ZERO, grouped, money
from kameng.ledger import recipes
from kameng.ledger.services import journal_draft_post
from kameng.payments.gateways.registry import channel_check_usable
from kameng.payments.locks import aml_review_lock, topup_owner_lock
from kameng.payments.models import (
    AmlPolicy,
    AmlReason,
    AmlReview,
    AmlReviewStatus,
    Payment,
    PaymentChannel,
    PaymentPurpose,
    PaymentStatus,
    Refund,
    RefundDestination,
    RefundStatus,
)
from kameng.payments.refunds import refund_send_to_gateway
from kameng.risk.services import risk_event_record

logger = logging.getLogger(__name__)

DEVICE_INDEX_CONTEXT = "payments.payment.device"


@dataclass(frozen=True)
class AmlPolicyValues:
    threshold: Decimal
    structuring_ratio: Decimal
    structuring_count: int
    structuring_daily_sum: Decimal
    structuring_window_hours: int
    retention_days: int


def aml_policy_defaults() -> AmlPolicyValues:
    return AmlPolicyValues(
        threshold=money(Decimal(settings.KAMENG_AML_REVIEW_THRESHOLD)),
        structuring_ratio=Decimal(settings.KAMENG_AML_STRUCTURING_RATIO),
        structuring_count=int(settings.KAMENG_AML_STRUCTURING_COUNT),
        structuring_daily_sum=money(Decimal(settings.KAMENG_AML_STRUCTURING_DAILY_SUM)),
        structuring_window_hours=int(settings.KAMENG_AML_STRUCTURING_WINDOW_HOURS),
        retention_days=int(settings.KAMENG_AML_RETENTION_DAYS))


def aml_policy() -> AmlPolicyValues:
    """The policy in force: the staff-edited row (the newest, should there be several), else the settings."""
    row = AmlPolicy.objects.order_by("-pk").first()
    if row is None:
        return aml_policy_defaults()
    return AmlPolicyValues(threshold=row.threshold, structuring_ratio=row.structuring_ratio,
                           structuring_count=row.structuring_count,
                           structuring_daily_sum=row.structuring_daily_sum,
                           structuring_window_hours=row.structuring_window_hours, retention_days=row.retention_days)


def device_index_of(device: str) -> bytes | None:
    """The keyed blind index a payment keeps of the device id it was started from (kameng.core.device)."""
    return blind_index(device, context=DEVICE_INDEX_CONTEXT) if device else None


@dataclass(frozen=True)
class HoldDecision:
    reason: AmlReason
    detail: str


def aml_hold_decision(*, payment: Payment, policy: AmlPolicyValues) -> HoldDecision | None:
    """Whether this top-up, about to be credited, must wait for review, and why (None: credit it). The buyer's
    other top-ups already credited in the window count (held, approved or rejected alike)."""
    amount = money(payment.amount)
    if amount > policy.threshold:
        return HoldDecision(AmlReason.SINGLE_OVER_THRESHOLD,
                            f"单笔充值 ¥{grouped(amount)} 超过 ¥{grouped(policy.threshold)}，需人工审核后到账")
    since = timezone.now() - timedelta(hours=policy.structuring_window_hours)
    earlier = Payment.objects.filter(user_id=payment.user_id, purpose=PaymentPurpose.WALLET_TOPUP,
                                     status=PaymentStatus.SUCCEEDED, paid_at__gt=since).exclude(pk=payment.pk)
    near = money(policy.threshold * policy.structuring_ratio)
    if policy.structuring_count > 0 and amount >= near:
        count = earlier.filter(amount__gte=near).count() + 1
        if count >= policy.structuring_count:
            return HoldDecision(AmlReason.STRUCTURING,
                                f"疑似拆分充值：{policy.structuring_window_hours} 小时内第 {count} 笔接近审核金额的"
                                f"充值，需人工审核后到账")
    if policy.structuring_daily_sum > ZERO:
        total = amount + (earlier.aggregate(total=Sum("amount"))["total"] or ZERO)
        if total > policy.structuring_daily_sum:
            hours = policy.structuring_window_hours
            return HoldDecision(AmlReason.STRUCTURING,
                                f"疑似拆分充值：{hours} 小时内多笔充值合计 ¥{grouped(total)}，"
                                f"超过 ¥{grouped(policy.structuring_daily_sum)}，需人工审核后到账")
    return None


def aml_topup_credit(*, payment: Payment, channel: PaymentChannel) -> AmlReview | None:
    """Credit a paid wallet top-up, in the caller's transaction with the payment row locked: to the wallet, or to
    the held top-ups with a review when the policy says so (returned)."""
    topup_owner_lock(user_id=payment.user_id)
    decision = aml_hold_decision(payment=payment, policy=aml_policy())
    if decision is None:
        journal_draft_post(draft=recipes.wallet_topup_credit(
            payment_number=payment.number, memo=f"{channel.name} 充值", channel_code=channel.code,
            user_id=payment.user_id, amount=payment.amount))
        return None
    journal_draft_post(draft=recipes.wallet_topup_held(
        payment_number=payment.number, memo=f"{channel.name} 充值（审核中）", channel_code=channel.code,
        user_id=payment.user_id, amount=payment.amount))
    identity = RealName.objects.filter(user_id=payment.user_id).first()
    is_verified = identity is not None and identity.status == RealNameStatus.VERIFIED
    review = AmlReview.objects.create(
        number=public_number("A"), payment=payment, user_id=payment.user_id, amount=payment.amount,
        reason=decision.reason, reason_detail=decision.detail[:200],
        identity_status=identity.status if identity is not None else RealNameStatus.UNVERIFIED,
        identity_name=str(identity.name) if is_verified and identity is not None and identity.name else None,
        identity_id_number=(str(identity.id_number) if is_verified and identity is not None and identity.id_number
                            else None))
    risk_event_record(kind=f"aml_{decision.reason}", message=f"充值 {payment.number} 进入反洗钱审核：{decision.detail}",
                      detail={"payment": payment.number, "review": review.number, "amount": str(payment.amount)},
                      user_id=payment.user_id, remote_addr=payment.client_ip)
    return review


def aml_review_approve(*, review_id: int, staff_id: int | None) -> AmlReview:
    """Release a held top-up into the buyer's wallet. Only a review still held; anything else is refused."""
    with transaction.atomic():
        review = aml_review_lock(review_id=review_id)
        _check_held(review)
        journal_draft_post(draft=recipes.aml_topup_released(
            review_number=review.number, memo=f"充值 {review.payment.number} 审核通过", user_id=review.user_id,
            amount=review.amount))
        review.status = AmlReviewStatus.APPROVED
        review.reviewed_by_id = staff_id
        review.reviewed_at = timezone.now()
        review.save(update_fields=["status", "reviewed_by", "reviewed_at"])
    logger.info("AML review %s approved by staff #%s", review.number, staff_id)
    return review


def aml_review_reject(*, review_id: int, staff_id: int | None, reason: str) -> AmlReview:
    """Reject a held top-up with a reason the buyer reads; its money is refunded through the original channel
    (sent after commit; a refund the gateway cannot settle at once is re-driven like any other)."""
    reason = reason.strip()
    if not reason:
        raise ApplicationError("请填写驳回原因（买家可见）", code="reason_required")
    review = AmlReview.objects.select_related("payment__channel").get(pk=review_id)
    channel_check_usable(review.payment.channel)  # refused before any money moves
    with transaction.atomic():
        review = aml_review_lock(review_id=review_id)
        _check_held(review)
        refund = _refund_open(review, reason=reason, staff_id=staff_id)
        review.status = AmlReviewStatus.REJECTED
        review.rejection_reason = reason[:200]
        review.refund = refund
        review.reviewed_by_id = staff_id
        review.reviewed_at = timezone.now()
        review.save(update_fields=["status", "rejection_reason", "refund", "reviewed_by", "reviewed_at"])
    logger.info("AML review %s rejected by staff #%s, refund %s", review.number, staff_id, refund.number)
    refund_send_to_gateway(refund_id=refund.pk)
    review.refresh_from_db()
    return review


def aml_review_refund_again(*, review_id: int, staff_id: int | None) -> AmlReview:
    """Send the refund of a rejected top-up again after the gateway refused the last one (its money came back to
    the hold). Refused while the last refund is still under way or succeeded."""
    review = AmlReview.objects.select_related("payment__channel").get(pk=review_id)
    channel_check_usable(review.payment.channel)
    with transaction.atomic():
        review = aml_review_lock(review_id=review_id)
        if review.status != AmlReviewStatus.REJECTED or review.refund is None:
            raise ConflictError("只有已驳回的充值可以重新退款", code="aml_not_rejected")
        if review.refund.status != RefundStatus.FAILED:
            raise ConflictError("上一笔原路退款为「%(status)s」，不能重新退款", code="aml_refund_not_failed",
                                params={"status": review.refund.get_status_display()})
        refund = _refund_open(review, reason=review.rejection_reason, staff_id=staff_id)
        review.refund = refund
        review.save(update_fields=["refund"])
    refund_send_to_gateway(refund_id=refund.pk)
    review.refresh_from_db()
    return review


def _check_held(review: AmlReview) -> None:
    if review.status != AmlReviewStatus.HELD:
        raise ConflictError("审核单 %(number)s 已%(status)s，不能再次审核", code="aml_review_decided",
                            params={"number": review.number, "status": review.get_status_display()})


def _refund_open(review: AmlReview, *, reason: str, staff_id: int | None) -> Refund:
    """The held money leaves towards the gateway (held → gateway clearing) with a pending refund of no order."""
    payment = review.payment
    refund = Refund.objects.create(number=public_number("R"), order=None, payment=payment, amount=review.amount,
                                   destination=RefundDestination.ORIGINAL, reason=f"充值审核未通过：{reason}"[:200],
                                   created_by_id=staff_id)
    updated = Payment.objects.filter(pk=payment.pk, refunded_amount__lte=F("amount") - review.amount).update(
        refunded_amount=F("refunded_amount") + review.amount)
    if updated != 1:
        raise ConflictError("这笔充值已原路退款，不能重复退款", code="refund_exceeds_payment")
    journal_draft_post(draft=recipes.aml_topup_refunded(
        refund_number=refund.number, memo=f"充值 {payment.number} 审核未通过，原路退款",
        channel_code=payment.channel.code, user_id=review.user_id, amount=review.amount))
    return refund


def aml_identities_purge(*, now: datetime | None = None) -> int:
    """Clear the identity snapshots of reviews decided more than the retention period ago. Returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=aml_policy().retention_days)
    return AmlReview.objects.filter(reviewed_at__lt=cutoff, identity_purged_at__isnull=True).exclude(
        status=AmlReviewStatus.HELD).update(identity_name=None, identity_id_number=None, identity_purged_at=now)
