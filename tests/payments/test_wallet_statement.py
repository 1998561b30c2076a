"""The wallet statement as the buyer reads it: an order paid through a gateway is one 订单支付 line, not a top-up
followed by a payment; the ledger keeps both journals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout, order_pay_with_wallet
from kameng.payments.models import ChannelKind, NotificationOutcome, Payment, PaymentChannel, PaymentPurpose
from kameng.payments.services import payment_credit
from kameng.payments.statement import wallet_statement_lines
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db


def _channel() -> PaymentChannel:
    return PaymentChannel.objects.create(code="wx", name="微信支付", kind=ChannelKind.EPAY_V1,
                                         gateway_url="http://gateway.invalid/", merchant_id="1001",
                                         merchant_key="k" * 32)


def _unpaid_order(buyer: Any, price: str = "49.50") -> Order:
    sku = SkuFactory.create(product__name="王者荣耀点券", name="60 点券", price=Decimal(price))
    stock_sku(sku, 3)
    return order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order


def _pay_through(channel: PaymentChannel, order: Order, number: str) -> Payment:
    payment = Payment.objects.create(number=number, user=order.buyer, channel=channel, purpose=PaymentPurpose.ORDER,
                                     order=order, amount=order.total_amount)
    outcome, _, _ = payment_credit(channel=channel, out_trade_no=number, amount=payment.amount,
                                   gateway_trade_no=f"T-{number}")
    assert outcome == NotificationOutcome.CREDITED
    return payment


def _lines(user_id: int, limit: int = 50) -> list[tuple[str, str, str, Decimal, str]]:
    return [(str(line["kind"]), str(line["reference"]), str(line["memo"]), line["amount"], line["paid_with"])
            for line in wallet_statement_lines(user_id=user_id, limit=limit)]


def test_an_order_paid_through_a_gateway_is_one_order_payment_line() -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "5.00", reference="gift-1")
    order = _unpaid_order(buyer)

    _pay_through(_channel(), order, "P-ONE")

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert _lines(buyer.pk) == [
        ("订单支付", order.number, "购买 王者荣耀点券 60 点券 × 1", Decimal("-49.50"), "微信支付"),
        ("人工调整", "gift-1", "", Decimal("5.00"), ""),
    ]
    # The ledger itself is unchanged: the gateway's money arrived, then the order took it.
    assert list(Journal.objects.filter(kind__in=[JournalKind.WALLET_TOPUP, JournalKind.ORDER_PAYMENT])
                .order_by("id").values_list("kind", "reference")) == [
        (JournalKind.WALLET_TOPUP, "P-ONE"), (JournalKind.ORDER_PAYMENT, order.number)]
    assert wallet_balance(user_id=buyer.pk) == Decimal("5.00")


def test_a_gateway_payment_the_order_could_not_take_stays_a_wallet_credit() -> None:
    # Paid twice: the wallet paid the order first, so the gateway's money landed in the wallet and stays there.
    buyer = UserFactory.create()
    fund_wallet(buyer, "49.50", reference="gift-2")
    order = _unpaid_order(buyer)
    order_pay_with_wallet(order_id=order.pk, buyer_id=buyer.pk)

    _pay_through(_channel(), order, "P-LATE")

    assert _lines(buyer.pk) == [
        ("钱包充值", "P-LATE", "微信支付 订单付款", Decimal("49.50"), ""),
        ("订单支付", order.number, "购买 王者荣耀点券 60 点券 × 1", Decimal("-49.50"), ""),
        ("人工调整", "gift-2", "", Decimal("49.50"), ""),
    ]
    assert wallet_balance(user_id=buyer.pk) == Decimal("49.50")


def test_a_wallet_top_up_and_a_wallet_paid_order_stay_two_lines() -> None:
    buyer = UserFactory.create()
    channel = _channel()
    top_up = Payment.objects.create(number="P-TOPUP", user=buyer, channel=channel,
                                    purpose=PaymentPurpose.WALLET_TOPUP, amount=Decimal("49.50"))
    payment_credit(channel=channel, out_trade_no=top_up.number, amount=top_up.amount, gateway_trade_no="T-1")
    sku = SkuFactory.create(product__name="王者荣耀点券", name="60 点券", price=Decimal("49.50"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=True).order

    assert _lines(buyer.pk) == [
        ("订单支付", order.number, "购买 王者荣耀点券 60 点券 × 1", Decimal("-49.50"), ""),
        ("钱包充值", "P-TOPUP", "微信支付 充值", Decimal("49.50"), ""),
    ]


def test_the_limit_counts_lines_after_joining() -> None:
    buyer = UserFactory.create()
    channel = _channel()
    orders = [_unpaid_order(buyer, price="10.00") for _ in range(3)]
    for index, order in enumerate(orders):
        _pay_through(channel, order, f"P-{index}")

    lines = _lines(buyer.pk, limit=2)

    assert [(reference, amount, paid_with) for _, reference, _, amount, paid_with in lines] == [
        (orders[2].number, Decimal("-10.00"), "微信支付"), (orders[1].number, Decimal("-10.00"), "微信支付")]


def test_the_wallet_page_shows_the_gateway_paid_order_once(client: Client) -> None:
    buyer = UserFactory.create()
    order = _unpaid_order(buyer)
    _pay_through(_channel(), order, "P-PAGE")
    client.force_login(buyer)

    page = client.get(reverse("web:wallet")).content.decode()

    # Neither a debit nor a credit of the wallet's own money: the amount without a sign, in the page's text colour.
    assert page.count('<td class="num through-gateway" data-testid="statement-amount">49.50<small') == 1
    assert "-49.50" not in page
    assert "+49.50" not in page
    assert '<small class="paid-with" data-testid="statement-paid-with">经微信支付付款</small>' in page
