"""Paying an order through a gateway: the money lands in the wallet and pays the order; if the order cannot take
it (expired, already paid), it stays in the wallet and the order's timeline says so."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from kameng.core.errors import ApplicationError
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout, orders_expire_due
from kameng.payments.models import ChannelKind, Payment, PaymentChannel, PaymentPurpose, PaymentStatus
from kameng.payments.services import NotificationOutcome, order_payment_start, payment_credit
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db


def _pending_order(price: str = "20.00") -> Order:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal(price))
    stock_sku(sku, 3)
    return order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order


def _channel(**extra: object) -> PaymentChannel:
    defaults: dict[str, object] = {"code": "epay-test", "name": "测试易支付", "kind": ChannelKind.EPAY_V1,
                                   "gateway_url": "http://gateway.invalid/", "merchant_id": "1001",
                                   "merchant_key": "k" * 32}
    return PaymentChannel.objects.create(**{**defaults, **extra})


def _payment_for(order: Order, channel: PaymentChannel, number: str = "") -> Payment:
    return Payment.objects.create(number=number or f"P-{order.number}", user_id=order.buyer_id, channel=channel,
                                  purpose=PaymentPurpose.ORDER, order=order, amount=order.total_amount)


def test_gateway_payment_pays_and_delivers_the_order() -> None:
    order = _pending_order()
    payment = _payment_for(order, _channel())

    outcome, _, _ = payment_credit(channel=payment.channel, out_trade_no=payment.number, amount=Decimal("20.00"),
                                   gateway_trade_no="T1")

    order.refresh_from_db()
    assert outcome == NotificationOutcome.CREDITED
    assert order.status == OrderStatus.DELIVERED
    assert CardKey.objects.filter(order=order, status=CardKeyStatus.SOLD).count() == 1
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")  # in, then out to the order
    assert order.events.filter(to_status=OrderStatus.PAID).get().message == "已通过测试易支付支付 ¥20.00"


def test_payment_after_the_order_expired_lands_in_the_wallet_with_a_note() -> None:
    order = _pending_order()
    payment = _payment_for(order, _channel())
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert orders_expire_due() == 1

    outcome, _, _ = payment_credit(channel=payment.channel, out_trade_no=payment.number, amount=Decimal("20.00"),
                                   gateway_trade_no="T1")

    order.refresh_from_db()
    assert outcome == NotificationOutcome.CREDITED
    assert order.status == OrderStatus.EXPIRED
    assert wallet_balance(user_id=order.buyer_id) == Decimal("20.00")
    assert CardKey.objects.filter(order=order).count() == 0
    note = order.events.latest("id")
    assert (note.from_status, note.to_status) == (OrderStatus.EXPIRED, OrderStatus.EXPIRED)
    assert "款项已存入您的钱包余额" in note.message
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED


def test_late_notification_for_an_order_not_yet_closed_is_honoured() -> None:
    order = _pending_order()
    payment = _payment_for(order, _channel())
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=5))

    payment_credit(channel=payment.channel, out_trade_no=payment.number, amount=Decimal("20.00"),
                   gateway_trade_no="T1")

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")


def test_second_payment_for_an_already_paid_order_stays_in_the_wallet() -> None:
    order = _pending_order()
    channel = _channel()
    first, second = _payment_for(order, channel, "P-A"), _payment_for(order, channel, "P-B")

    payment_credit(channel=channel, out_trade_no=first.number, amount=Decimal("20.00"), gateway_trade_no="T1")
    payment_credit(channel=channel, out_trade_no=second.number, amount=Decimal("20.00"), gateway_trade_no="T2")

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert CardKey.objects.filter(order=order).count() == 1
    assert wallet_balance(user_id=order.buyer_id) == Decimal("20.00")
    assert "款项已存入您的钱包余额" in order.events.latest("id").message


def test_balance_channel_pays_at_once_and_limits_are_enforced() -> None:
    order = _pending_order("20.00")
    fund_wallet(order.buyer, "25.00")
    balance = _channel(code="balance", name="钱包余额", kind=ChannelKind.BALANCE, gateway_url="", merchant_id="",
                       merchant_key=None)
    small = _channel(code="small", max_amount=Decimal("10.00"))

    with pytest.raises(ApplicationError) as error:
        order_payment_start(order_id=order.pk, buyer_id=order.buyer_id, channel_code=small.code,
                            return_url="http://x/r")
    assert error.value.code == "amount_out_of_channel_range"

    started = order_payment_start(order_id=order.pk, buyer_id=order.buyer_id, channel_code=balance.code,
                                  return_url="http://x/r")
    assert started.is_paid
    assert started.order.status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=order.buyer_id) == Decimal("5.00")
    assert Payment.objects.count() == 0
