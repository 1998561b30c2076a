"""The same valid notify arriving 100 times at once credits the wallet exactly once (PostgreSQL, real threads)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.payments.models import NotificationOutcome, PaymentNotification, PaymentStatus
from kameng.payments.services import payment_notification_process
from kameng.simulators.services import simulated_epay_notify_params
from tests.factories import UserFactory
from tests.payments.support import CHANNEL_CODE, epay_channel, epay_merchant, paid_trade, pending_payment

DELIVERIES = 100
WORKERS = 16


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_same_notify_processed_100_times_in_parallel_credits_once() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers and ignores select_for_update")
    buyer = UserFactory.create()
    payment = pending_payment(user_id=buyer.pk, channel=epay_channel(), amount="50.00", number="P0100")
    params = simulated_epay_notify_params(paid_trade(merchant=epay_merchant(), out_trade_no=payment.number,
                                                     money="50.00"))

    def deliver(_: int) -> str:
        try:
            return payment_notification_process(channel_code=CHANNEL_CODE, params=dict(params)).outcome
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(pool.map(deliver, range(DELIVERIES)))

    assert outcomes.count(NotificationOutcome.CREDITED) == 1
    assert outcomes.count(NotificationOutcome.DUPLICATE) == DELIVERIES - 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert wallet_balance(user_id=buyer.pk) == Decimal("50.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference="P0100").count() == 1
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.CREDITED).count() == 1
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.DUPLICATE).count() == DELIVERIES - 1
    assert ledger_problems() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_same_wechat_order_notify_100_times_in_parallel_pays_the_order_once() -> None:
    """The RSA-signed, AES-GCM-encrypted WeChat Pay notify for an ORDER payment: one credit, one delivery."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers and ignores select_for_update")
    import secrets

    from kameng.inventory.models import CardKey, CardKeyStatus
    from kameng.orders.models import OrderStatus
    from kameng.orders.services import order_checkout
    from kameng.payments.models import Payment, PaymentPurpose
    from tests.factories import SkuFactory, stock_sku
    from tests.payments import test_wechat as wechat

    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("12.34"))
    stock_sku(sku, 3)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    side = wechat.WechatSide(platform_key=wechat.rsa_key(), api_v3_key=secrets.token_hex(16))
    channel = wechat.channel_for(side)
    payment = Payment.objects.create(number="P20261126000777", user_id=buyer.pk, channel=channel,
                                     purpose=PaymentPurpose.ORDER, order=order, amount=order.total_amount)
    headers, body = wechat.notify(side, wechat.transaction(payment.number, 1234))

    def deliver(_: int) -> str:
        try:
            return payment_notification_process(channel_code=channel.code, headers=dict(headers), body=body).outcome
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(pool.map(deliver, range(DELIVERIES)))

    assert outcomes.count(NotificationOutcome.CREDITED) == 1
    assert outcomes.count(NotificationOutcome.DUPLICATE) == DELIVERIES - 1
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert CardKey.objects.filter(order=order, status=CardKeyStatus.SOLD).count() == 1
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    assert Journal.objects.filter(kind=JournalKind.ORDER_PAYMENT, reference=order.number).count() == 1
    assert ledger_problems() == []
