"""Original-channel refunds whose outcome is unknown: never sent blindly again, never failed from a later answer.

A refund request that timed out may have been carried out. Epay V1 refunds carry no refund number, so sending it
again asks for a second refund; the gateway's "exceeds the refundable amount" then looked like a failure and the
money went back to the wallet as well: the buyer was paid twice (the auditor's case, first test). Now such a
refund is held for staff review; gateways with a refund query are asked instead, by our refund number.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.utils import timezone

from kameng.core.errors import ConflictError
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.payments.gateways.base import GatewayError, RefundResult, RequestNotSentError
from kameng.payments.gateways.base import RefundStatus as GatewayRefundStatus
from kameng.payments.models import Payment, Refund, RefundDestination, RefundStatus
from kameng.payments.refunds import (
    order_refund,
    refund_review_settle,
    refund_send_to_gateway,
    refunds_redrive_pending,
)
from tests.payments.refund_support import FakeRefundGateway, order_paid_by_channel

pytestmark = pytest.mark.django_db


def _answer_long_lost(refund: Refund) -> None:
    """Minutes later: no answer can still be on its way, the periodic job may look at it."""
    past = timezone.now() - timedelta(minutes=5)
    Refund.objects.filter(pk=refund.pk).update(created_at=past, last_sent_at=past)


def _original_refund(order: Order, amount: str = "30.00") -> Refund:
    return order_refund(order_id=order.pk, amount=Decimal(amount), destination=RefundDestination.ORIGINAL,
                        reason="买家申请")


# -- epay V1 through its real adapter: the auditor's case ---------------------------------------------------------

def test_v1_refund_whose_answer_was_lost_is_held_for_review_and_never_paid_twice(
        monkeypatch: pytest.MonkeyPatch) -> None:
    order, payment = order_paid_by_channel(price="30.00")
    gateway_refunded: list[str] = []

    def epay_gateway(url: str, params: Any = None, timeout: Any = None, data: Any = None) -> httpx.Response:
        """A real epay gateway: it refunds at most what was paid, and the first answer is lost on the way back."""
        already = sum((Decimal(money) for money in gateway_refunded), Decimal("0"))
        if already + Decimal(data["money"]) > payment.amount:
            return httpx.Response(200, json={"code": -1, "msg": "退款金额超过可退金额"})
        gateway_refunded.append(data["money"])
        if len(gateway_refunded) == 1:
            raise httpx.ReadTimeout("timed out")
        return httpx.Response(200, json={"code": 1, "msg": "退款成功"})

    monkeypatch.setattr(httpx, "post", epay_gateway)

    refund = _original_refund(order)
    assert (refund.status, refund.attempts) == (RefundStatus.PENDING, 1)
    assert refund.failure_reason == "结果未知：支付网关退款请求超时或连接中断，结果未知"
    _answer_long_lost(refund)
    assert refunds_redrive_pending() == 1
    assert refunds_redrive_pending() == 0  # held: the job leaves it alone from now on

    refund.refresh_from_db()
    assert refund.status == RefundStatus.REVIEW
    assert "该通道协议无退款查询" in refund.failure_reason
    assert gateway_refunded == ["30.00"]  # asked once only
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")  # the money is out, not back in the wallet
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("30.00")

    # Staff find the refund in the gateway's back office and confirm it.
    settled = refund_review_settle(refund_id=refund.pk, is_refunded_by_gateway=True, staff_id=None)
    assert settled.status == RefundStatus.SUCCEEDED
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")
    assert sum(Decimal(money) for money in gateway_refunded) == Decimal("30.00")
    assert order.events.latest("id").message == "¥30.00 已原路退回测试易支付"


# -- the service, with a fake gateway -------------------------------------------------------------------------------

def test_a_refund_never_sent_for_want_of_a_connection_is_sent_again_even_without_a_query(
        refund_gateway: FakeRefundGateway) -> None:
    order, _ = order_paid_by_channel("30.00")
    refund_gateway.answers += [RequestNotSentError("支付网关无法连接，退款请求未发出"),
                               RefundResult(status=GatewayRefundStatus.SUCCEEDED, gateway_refund_no="RF1")]

    refund = _original_refund(order)
    assert (refund.status, refund.attempts, refund.last_sent_at) == (RefundStatus.PENDING, 0, None)
    Refund.objects.filter(pk=refund.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    refunds_redrive_pending()

    refund.refresh_from_db()
    assert (refund.status, refund.attempts, refund.gateway_refund_no) == (RefundStatus.SUCCEEDED, 1, "RF1")
    assert len(refund_gateway.calls) == 2


def test_a_refusal_answering_a_first_request_is_a_failure_and_the_money_comes_back(
        refund_gateway: FakeRefundGateway) -> None:
    order, _ = order_paid_by_channel("30.00")
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.FAILED, message="交易已超过退款期限"))

    refund = _original_refund(order)

    assert (refund.status, refund.failure_reason) == (RefundStatus.FAILED, "交易已超过退款期限")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("30.00")


@pytest.mark.parametrize(("found", "status", "wallet", "reason"), [
    (RefundResult(status=GatewayRefundStatus.SUCCEEDED, gateway_refund_no="RF7"), RefundStatus.SUCCEEDED, "0.00", ""),
    (RefundResult(status=GatewayRefundStatus.FAILED, message="退款关闭"), RefundStatus.FAILED, "30.00", "退款关闭"),
    (RefundResult(status=GatewayRefundStatus.PENDING), RefundStatus.PENDING, "0.00", "通道处理中"),
    (RefundResult(status=GatewayRefundStatus.NEEDS_REVIEW, message="退款异常"), RefundStatus.REVIEW, "0.00",
     "退款异常"),
    (GatewayError("查询超时"), RefundStatus.PENDING, "0.00", "查询退款结果失败，稍后再查：查询超时"),
])
def test_after_a_lost_answer_the_gateways_own_record_settles_the_refund(
        refund_gateway: FakeRefundGateway, found: Any, status: str, wallet: str, reason: str) -> None:
    order, payment = order_paid_by_channel("30.00")
    refund_gateway.has_refund_query = True
    refund_gateway.answers.append(GatewayError("读取超时"))
    refund_gateway.query_answers.append(found)
    refund = _original_refund(order)
    _answer_long_lost(refund)

    refund = refund_send_to_gateway(refund_id=refund.pk)

    assert (refund.status, refund.failure_reason) == (status, reason)
    assert len(refund_gateway.calls) == 1  # asked about, never sent again
    assert refund_gateway.queries == [{"out_trade_no": payment.number, "gateway_trade_no": "T1",
                                       "refund_no": refund.number}]
    assert wallet_balance(user_id=order.buyer_id) == Decimal(wallet)


def test_a_refusal_of_a_resend_is_held_for_review_never_failed(refund_gateway: FakeRefundGateway) -> None:
    """The gateway has no record, so the refund goes out again under its number; refused this time, the refusal
    could still be about money of the first request (a gateway slow to record it): staff decide."""
    order, payment = order_paid_by_channel("30.00")
    refund_gateway.has_refund_query = True
    refund_gateway.answers += [GatewayError("读取超时"),
                               RefundResult(status=GatewayRefundStatus.FAILED, message="退款金额超过可退金额")]
    refund_gateway.query_answers.append(RefundResult(status=GatewayRefundStatus.NOT_FOUND))
    refund = _original_refund(order)
    _answer_long_lost(refund)

    refund = refund_send_to_gateway(refund_id=refund.pk)

    assert refund.status == RefundStatus.REVIEW
    assert refund.failure_reason.startswith("重发的退款请求被通道拒绝（退款金额超过可退金额）")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("30.00")

    # Staff find no refund at the gateway: the money goes back to the wallet, once.
    settled = refund_review_settle(refund_id=refund.pk, is_refunded_by_gateway=False, staff_id=7)
    assert (settled.status, settled.failure_reason) == (RefundStatus.FAILED, "人工核实：通道未退款")
    assert order.events.latest("id").message == "原路退款失败（人工核实：通道未退款），¥30.00 已留在您的钱包余额"
    assert wallet_balance(user_id=order.buyer_id) == Decimal("30.00")
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("0.00")
    with pytest.raises(ConflictError, match="不是待人工核实状态"):
        refund_review_settle(refund_id=refund.pk, is_refunded_by_gateway=True)
    assert wallet_balance(user_id=order.buyer_id) == Decimal("30.00")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED


def test_a_refund_whose_answer_may_still_come_is_left_alone(refund_gateway: FakeRefundGateway) -> None:
    order, _ = order_paid_by_channel("30.00")
    refund_gateway.answers.append(GatewayError("读取超时"))
    refund = _original_refund(order)

    again = refund_send_to_gateway(refund_id=refund.pk)  # the staff action a second later, say

    assert (again.status, again.attempts) == (RefundStatus.PENDING, 1)
    assert len(refund_gateway.calls) == 1


def test_a_held_refund_ignores_gateway_answers_and_the_job(refund_gateway: FakeRefundGateway) -> None:
    order, _ = order_paid_by_channel("30.00")
    refund_gateway.answers.append(GatewayError("读取超时"))
    refund = _original_refund(order)
    _answer_long_lost(refund)
    assert refund_send_to_gateway(refund_id=refund.pk).status == RefundStatus.REVIEW

    assert refund_send_to_gateway(refund_id=refund.pk).status == RefundStatus.REVIEW
    assert refunds_redrive_pending(older_than_seconds=0) == 0
    assert len(refund_gateway.calls) == 1


def test_pending_refunds_from_before_the_upgrade_count_as_sent() -> None:
    """The data migration: a refund pending before attempts were counted may have been sent."""
    from importlib import import_module

    from django.apps import apps

    order, payment = order_paid_by_channel("30.00")
    pending = Refund.objects.create(number="R-OLD", order=order, payment=payment, amount=Decimal("1.00"),
                                    destination=RefundDestination.ORIGINAL)
    to_wallet = Refund.objects.create(number="R-WALLET", order=order, amount=Decimal("1.00"),
                                      destination=RefundDestination.WALLET)
    migration = import_module("kameng.payments.migrations.0003_refund_review_attempts")

    migration.pending_refunds_may_have_been_sent(apps, None)

    assert Refund.objects.get(pk=pending.pk).attempts == 1
    assert Refund.objects.get(pk=to_wallet.pk).attempts == 0
    assert Payment.objects.get(pk=payment.pk).refunded_amount == Decimal("0.00")


@pytest.mark.parametrize("still", [RefundResult(status=GatewayRefundStatus.PENDING, message="处理中"),
                                   GatewayError("查询超时")])
def test_a_refund_the_gateway_never_settles_goes_to_review_after_a_day(
        refund_gateway: FakeRefundGateway, still: Any) -> None:
    order, _payment = order_paid_by_channel("30.00")
    refund_gateway.has_refund_query = True
    refund_gateway.answers.append(GatewayError("读取超时"))
    refund_gateway.query_answers += [still, still]
    refund = _original_refund(order)
    _answer_long_lost(refund)

    refund = refund_send_to_gateway(refund_id=refund.pk)
    assert refund.status == RefundStatus.PENDING  # asked again later

    day_old = timezone.now() - timedelta(hours=24, minutes=1)
    Refund.objects.filter(pk=refund.pk).update(created_at=day_old, last_sent_at=day_old)
    refund = refund_send_to_gateway(refund_id=refund.pk)

    assert refund.status == RefundStatus.REVIEW
    assert "24 小时内未确认退款结果" in refund.failure_reason
    assert len(refund_gateway.calls) == 1  # never sent again
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")  # the money waits for the person's word
