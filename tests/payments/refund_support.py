"""Shared by the refund tests (service and admin): a fake gateway refund API and an order paid through a channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from kameng.payments import refunds as refunds_module
from kameng.payments.gateways.base import RefundResult
from kameng.payments.models import ChannelKind, Payment, PaymentChannel, PaymentPurpose
from kameng.payments.services import NotificationOutcome, payment_credit
from tests.factories import SkuFactory, UserFactory, stock_sku


@dataclass
class FakeRefundGateway:
    """Stands in for a gateway's refund API: answers what the test says and remembers every call. Without
    `has_refund_query` it is like epay V1 (no refund query); with it, queries take their answers from
    `query_answers`."""

    answers: list[Any] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    has_refund_query: bool = False
    query_answers: list[Any] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)

    def refund(self, **kwargs: Any) -> RefundResult:
        self.calls.append(kwargs)
        return self._next(self.answers)

    def refund_query(self, **kwargs: Any) -> RefundResult:
        assert self.has_refund_query, "refund_query called on a gateway without one"
        self.queries.append(kwargs)
        return self._next(self.query_answers)

    @staticmethod
    def _next(answers: list[Any]) -> RefundResult:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        result: RefundResult = answer
        return result


def fake_refund_gateway_install(monkeypatch: pytest.MonkeyPatch) -> FakeRefundGateway:
    """Make every refund go to a fake gateway (the `refund_gateway` fixture in tests/conftest.py)."""
    fake = FakeRefundGateway()
    monkeypatch.setattr(refunds_module, "gateway_for", lambda channel: fake)
    return fake


def order_paid_by_channel(price: str = "30.00", quantity: int = 1) -> tuple[Order, Payment]:
    """An order paid through an epay channel (its notification already processed), delivered."""
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal(price))
    stock_sku(sku, quantity + 2)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=quantity, pay_with_wallet=False).order
    channel = PaymentChannel.objects.create(code="epay-test", name="测试易支付", kind=ChannelKind.EPAY_V1,
                                            gateway_url="http://gateway.invalid/", merchant_id="1001",
                                            merchant_key="k" * 32)
    payment = Payment.objects.create(number=f"P-{order.number}", user=buyer, channel=channel,
                                     purpose=PaymentPurpose.ORDER, order=order, amount=order.total_amount)
    outcome, _, _ = payment_credit(channel=channel, out_trade_no=payment.number, amount=payment.amount,
                                   gateway_trade_no="T1")
    assert outcome == NotificationOutcome.CREDITED
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    return order, payment
