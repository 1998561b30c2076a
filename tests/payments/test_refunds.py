"""Refunds: to the wallet or back through the original channel, fully or in part; failures come back to the wallet."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from kameng.core.errors import ApplicationError, ConflictError
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import OrderStatus
from kameng.orders.services import order_checkout
from kameng.payments.gateways.base import GatewayError, RefundResult
from kameng.payments.gateways.base import RefundStatus as GatewayRefundStatus
from kameng.payments.models import (
    Refund,
    RefundDestination,
    RefundStatus,
)
from kameng.payments.refunds import order_refund, refunds_redrive_pending
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.payments.refund_support import FakeRefundGateway, order_paid_by_channel

pytestmark = pytest.mark.django_db




def test_full_refund_to_wallet_of_a_wallet_paid_order() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("12.50"))
    stock_sku(sku, 3)
    fund_wallet(buyer, "50.00")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=2).order

    refund = order_refund(order_id=order.pk, amount=Decimal("25.00"), destination=RefundDestination.WALLET,
                          reason="卡密无效")

    order.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert (order.status, order.refunded_amount) == (OrderStatus.REFUNDED, Decimal("25.00"))
    assert wallet_balance(user_id=buyer.pk) == Decimal("50.00")
    assert order.events.latest("id").message == "已退款 ¥25.00 到钱包余额（卡密无效）"


def test_partial_refunds_then_the_rest_and_never_more_than_paid() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 3)
    fund_wallet(buyer, "30.00")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=3).order

    order_refund(order_id=order.pk, amount=Decimal("10.00"), destination=RefundDestination.WALLET)
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == (OrderStatus.PARTIALLY_REFUNDED, Decimal("10.00"))
    order_refund(order_id=order.pk, amount=Decimal("5.00"), destination=RefundDestination.WALLET)

    with pytest.raises(ConflictError) as error:
        order_refund(order_id=order.pk, amount=Decimal("15.01"), destination=RefundDestination.WALLET)
    assert error.value.code == "refund_exceeds_paid"
    assert Refund.objects.count() == 2

    order_refund(order_id=order.pk, amount=Decimal("15.00"), destination=RefundDestination.WALLET)
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == (OrderStatus.REFUNDED, Decimal("30.00"))
    assert wallet_balance(user_id=buyer.pk) == Decimal("30.00")


def test_refund_of_an_unpaid_order_is_refused() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create()
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    with pytest.raises(ConflictError):
        order_refund(order_id=order.pk, amount=Decimal("1.00"), destination=RefundDestination.WALLET)
    with pytest.raises(ApplicationError):
        order_refund(order_id=order.pk, amount=Decimal("0"), destination=RefundDestination.WALLET)
    assert Refund.objects.count() == 0


def test_original_channel_refund_goes_out_through_the_gateway(refund_gateway: FakeRefundGateway) -> None:
    order, payment = order_paid_by_channel("30.00")
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.SUCCEEDED, gateway_refund_no="RF1"))

    refund = order_refund(order_id=order.pk, amount=Decimal("30.00"), destination=RefundDestination.ORIGINAL)

    payment.refresh_from_db()
    assert (refund.status, refund.gateway_refund_no) == (RefundStatus.SUCCEEDED, "RF1")
    assert payment.refunded_amount == Decimal("30.00")
    assert refund_gateway.calls == [{
        "out_trade_no": payment.number, "gateway_trade_no": "T1", "refund_no": refund.number,
        "amount": Decimal("30.00"), "total_amount": Decimal("30.00"), "reason": "订单退款"}]
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")  # the money left for the channel
    assert order.events.latest("id").message == "¥30.00 已原路退回测试易支付"


def test_refused_original_refund_leaves_the_money_in_the_wallet(refund_gateway: FakeRefundGateway) -> None:
    order, payment = order_paid_by_channel("30.00")
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.FAILED, message="交易已超过退款期限"))

    refund = order_refund(order_id=order.pk, amount=Decimal("20.00"), destination=RefundDestination.ORIGINAL)

    payment.refresh_from_db()
    order.refresh_from_db()
    assert (refund.status, refund.failure_reason) == (RefundStatus.FAILED, "交易已超过退款期限")
    assert payment.refunded_amount == Decimal("0.00")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("20.00")
    assert (order.status, order.refunded_amount) == (OrderStatus.PARTIALLY_REFUNDED, Decimal("20.00"))
    assert "¥20.00 已留在您的钱包余额" in order.events.latest("id").message


def test_unreachable_gateway_keeps_the_refund_pending_then_the_job_finishes_it_once(
        refund_gateway: FakeRefundGateway) -> None:
    """A gateway with a refund query (epay V2, Alipay, WeChat): the lost answer is asked about, and a refund the
    gateway never took goes out again under the same number. Epay V1: tests/payments/test_refund_unknown_outcome.py."""
    order, _payment = order_paid_by_channel("30.00")
    refund_gateway.has_refund_query = True
    refund_gateway.answers += [GatewayError("支付网关退款请求失败", code="gateway_unreachable"),
                               RefundResult(status=GatewayRefundStatus.SUCCEEDED, gateway_refund_no="RF2")]
    refund_gateway.query_answers.append(RefundResult(status=GatewayRefundStatus.NOT_FOUND))

    refund = order_refund(order_id=order.pk, amount=Decimal("30.00"), destination=RefundDestination.ORIGINAL)
    assert refund.status == RefundStatus.PENDING
    Refund.objects.filter(pk=refund.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert refunds_redrive_pending() == 0  # sent just now: its answer might still be on the way
    Refund.objects.filter(pk=refund.pk).update(last_sent_at=timezone.now() - timedelta(minutes=5))

    assert refunds_redrive_pending(older_than_seconds=0) == 1
    assert refunds_redrive_pending(older_than_seconds=0) == 0
    refund.refresh_from_db()
    assert (refund.status, refund.attempts) == (RefundStatus.SUCCEEDED, 2)
    # Asked first, then the same refund number again: the gateway's idempotency key.
    assert [query["refund_no"] for query in refund_gateway.queries] == [refund.number]
    assert [call["refund_no"] for call in refund_gateway.calls] == [refund.number, refund.number]
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")


def test_original_refund_of_a_wallet_paid_order_is_refused(refund_gateway: FakeRefundGateway) -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 1)
    fund_wallet(buyer, "10.00")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order
    with pytest.raises(ConflictError) as error:
        order_refund(order_id=order.pk, amount=Decimal("10.00"), destination=RefundDestination.ORIGINAL)
    assert error.value.code == "no_original_payment"
    assert Refund.objects.count() == 0
    assert refund_gateway.calls == []
