"""What a gateway payment writes on its order's timeline: typed facts (channel, amount, payment number, the reason
the order could not take the money), which read in the buyer's language."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation

from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_cancel, order_checkout
from kameng.payments.gateways.epay import epay_sign
from kameng.payments.models import ChannelKind, NotificationOutcome, Payment, PaymentChannel, PaymentPurpose
from kameng.payments.services import payment_notification_process
from tests.factories import SkuFactory, UserFactory, stock_sku

pytestmark = pytest.mark.django_db

PID = "1001"
KEY = "timeline-merchant-key-0123456789ab"


def _order_and_payment() -> tuple[Order, Payment]:
    channel = PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                            gateway_url="https://pay.example.com/", merchant_id=PID, merchant_key=KEY)
    sku = SkuFactory.create(price=Decimal("20.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=UserFactory.create().pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    payment = Payment.objects.create(number="P20261203000001", user_id=order.buyer_id, channel=channel,
                                     purpose=PaymentPurpose.ORDER, order=order, amount=order.total_amount)
    return order, payment


def _notify(payment: Payment) -> str:
    params = {"pid": PID, "trade_no": "2026120300001", "out_trade_no": payment.number, "type": "alipay",
              "name": "order", "money": f"{payment.amount:.2f}", "trade_status": "TRADE_SUCCESS"}
    signed = {**params, "sign": epay_sign(params, KEY), "sign_type": "MD5"}
    return payment_notification_process(channel_code="epay", params=signed).outcome


def test_a_gateway_payment_writes_paid_with_its_channel_amount_and_number() -> None:
    order, payment = _order_and_payment()

    assert _notify(payment) == NotificationOutcome.CREDITED

    paid = Order.objects.get(pk=order.pk).events.get(to_status=OrderStatus.PAID)
    assert (paid.kind, paid.params) == ("paid", {"channel": "易支付", "amount": "20.00", "payment": payment.number})
    assert paid.message == "已通过易支付支付 ¥20.00"
    with translation.override("en"):
        assert paid.message == "Paid ¥20.00 with 易支付"


def test_a_payment_the_order_cannot_take_says_why_in_the_readers_language() -> None:
    order, payment = _order_and_payment()
    order_cancel(order_id=order.pk, buyer_id=order.buyer_id)

    assert _notify(payment) == NotificationOutcome.CREDITED

    assert wallet_balance(user_id=order.buyer_id) == Decimal("20.00")
    note = Order.objects.get(pk=order.pk).events.get(from_status=OrderStatus.CANCELLED)
    assert (note.kind, note.to_status, note.params) == ("payment_to_wallet", "cancelled", {
        "channel": "易支付", "amount": "20.00", "payment": payment.number,
        "reason": "订单当前状态为「%(status)s」，无需支付", "reason_params": {"status": "已取消"}})
    assert note.message == ("易支付付款 ¥20.00 已到账，但订单未能完成（订单当前状态为「已取消」，无需支付），"
                            "款项已存入您的钱包余额")
    with translation.override("en"):
        assert note.message == ("Your 易支付 payment of ¥20.00 arrived but could not complete the order (This order "
                                "is “Cancelled”: there is nothing to pay): the money is in your wallet balance")
