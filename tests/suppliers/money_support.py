"""Shared steps of the supplier money tests: orders delivered with a supplier's card keys or top-up, refunds,
and the ledger figures they check."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from kameng.inventory.models import CardKey
from kameng.ledger.models import Account, AccountKind
from kameng.ledger.selectors import account_balance_from_entries
from kameng.orders.fulfilment import order_deliver_manually
from kameng.orders.models import Order
from kameng.orders.refunds import order_refund_to_wallet
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.suppliers.models import AttemptStatus, Supplier, TopupAttempt
from tests.factories import SkuFactory, SupplierOfferFactory, UserFactory, fund_wallet, manual_sku, stock_sku

LISTENER = "kameng.suppliers.settlement.settlement_aftercare"
Capture = Callable[..., Any]


@pytest.fixture
def settling(settings: Settings) -> None:
    settings.KAMENG_ORDER_AFTERCARE = [LISTENER]


def card_key_order(capture: Capture, *, supplier: Supplier, cost: str, quantity: int = 1, price: str = "100.00",
                   request_id: str = "r-1") -> Order:
    """A buyer buys `quantity` of the supplier's card keys (each at `cost` to the platform), paid from the wallet."""
    sku = SkuFactory.create(price=Decimal(price))
    stock_sku(sku, quantity, prefix=f"S{sku.pk}")
    CardKey.objects.filter(sku=sku).update(supplier=supplier, cost=Decimal(cost))
    buyer = UserFactory.create()
    fund_wallet(buyer, Decimal(price) * quantity)
    with capture(execute=True):
        return purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=quantity, request_id=request_id,
                               payment=PaymentChoice(PayBy.WALLET)).order


def topup_order(capture: Capture, *, supplier: Supplier, cost: str, price: str = "100.00") -> Order:
    """A direct top-up order delivered by the supplier: its attempt SUCCEEDED at `cost` (the attempt's total)."""
    sku = manual_sku(price)
    buyer = UserFactory.create()
    fund_wallet(buyer, Decimal(price))
    with capture(execute=True):
        order = purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="t-1",
                                payment=PaymentChoice(PayBy.WALLET)).order
    offer = SupplierOfferFactory.create(supplier=supplier, sku=sku, price=Decimal(cost))
    TopupAttempt.objects.create(order=order, offer=offer, supplier=supplier, sequence=1,
                                customer_order_no=f"C{order.pk:08d}", cost=Decimal(cost),
                                status=AttemptStatus.SUCCEEDED)
    with capture(execute=True):
        return order_deliver_manually(order_id=order.pk, note="已到账")


def refund(capture: Capture, order: Order, amount: str, reference: str) -> None:
    with capture(execute=True):
        order_refund_to_wallet(order_id=order.pk, amount=Decimal(amount), reference=reference)


def balance(supplier: Supplier, kind: AccountKind) -> Decimal:
    account = Account.objects.filter(owner_id=supplier.owner_id, kind=kind).first()
    return account.balance if account else Decimal("0.00")


def tax_withheld() -> Decimal:
    account = Account.objects.filter(kind=AccountKind.TAX_WITHHELD).first()
    return account_balance_from_entries(account_id=account.pk) if account else Decimal("0.00")


def credit_payable(supplier: Supplier, amount: str, reference: str = "test-credit") -> None:
    """Put earned money in the supplier's payable as a settlement would (no tax), without an order."""
    from kameng.ledger import recipes
    from kameng.ledger.services import journal_draft_post

    journal_draft_post(draft=recipes.supplier_settlement(reference=reference, memo="test", owner_id=supplier.owner_id,
                                                         cost=Decimal(amount), tax=Decimal("0.00")))
