"""Every line of the wallet statement names its order (and the page links it): order payments, top-ups made for
an order, refunds to the wallet and through the original channel, and a failed channel refund coming back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from kameng.ledger.models import JournalKind
from kameng.orders.services import order_checkout
from kameng.payments.gateways.base import RefundResult
from kameng.payments.gateways.base import RefundStatus as GatewayRefundStatus
from kameng.payments.models import RefundDestination
from kameng.payments.refunds import order_refund
from kameng.payments.statement import wallet_statement_lines
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.payments.refund_support import FakeRefundGateway, order_paid_by_channel

pytestmark = pytest.mark.django_db


def _kinds_and_orders(user_id: int) -> list[tuple[str, str, Decimal]]:
    return [(str(line["journal_kind"]), str(line["order_number"]), line["amount"])
            for line in wallet_statement_lines(user_id=user_id)]


def test_every_movement_names_its_order(refund_gateway: FakeRefundGateway) -> None:
    order, _ = order_paid_by_channel("30.00")
    buyer_id = order.buyer_id
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.SUCCEEDED, gateway_refund_no="RF1"))
    order_refund(order_id=order.pk, amount=Decimal("10.00"), destination=RefundDestination.ORIGINAL)
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.FAILED, message="交易已超过退款期限"))
    order_refund(order_id=order.pk, amount=Decimal("5.00"), destination=RefundDestination.ORIGINAL)
    order_refund(order_id=order.pk, amount=Decimal("2.00"), destination=RefundDestination.WALLET)
    buyer = order.buyer
    fund_wallet(buyer, "1.00", reference="gift")

    assert _kinds_and_orders(buyer_id) == [
        (JournalKind.ADJUSTMENT, "", Decimal("1.00")),
        (JournalKind.ORDER_REFUND, order.number, Decimal("2.00")),
        (JournalKind.REFUND_PAYOUT_REVERSAL, order.number, Decimal("5.00")),
        (JournalKind.REFUND_PAYOUT, order.number, Decimal("-5.00")),
        (JournalKind.ORDER_REFUND, order.number, Decimal("5.00")),
        (JournalKind.REFUND_PAYOUT, order.number, Decimal("-10.00")),
        (JournalKind.ORDER_REFUND, order.number, Decimal("10.00")),
        (JournalKind.ORDER_PAYMENT, order.number, Decimal("-30.00")),  # paid through the gateway: one line
    ]


def test_a_wallet_paid_order_links_from_the_wallet_page(client: Client) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "20.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order
    client.force_login(buyer)

    body = client.get(reverse("web:wallet")).content.decode()

    assert body.count('data-testid="statement-order"') == 1
    assert f'href="{reverse("web:order_detail", args=[order.number])}"' in body
