from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import DecimalField
from django.utils import timezone
from pytest_django.fixtures import Settings

from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.inventory.services import SoldOutError
from kameng.ledger.selectors import wallet_balance
from kameng.ledger.services import InsufficientFundsError
from kameng.orders.models import ORDER_TOTAL_MAX, Order, OrderStatus
from kameng.orders.services import order_cancel, order_checkout
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db


def test_checkout_with_wallet_delivers_keys_and_debits_exact_amount() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("9.50"))
    secrets = stock_sku(sku, 5)
    fund_wallet(buyer, "100.00")

    result = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=3, request_id="r1")

    assert result.created
    assert result.order.status == OrderStatus.DELIVERED
    assert len(set(result.secrets)) == 3  # distinct keys
    assert set(result.secrets) <= set(secrets)
    assert wallet_balance(user_id=buyer.pk) == Decimal("71.50")
    assert CardKey.objects.filter(order=result.order, status=CardKeyStatus.SOLD).count() == 3
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 2
    assert [event.to_status for event in result.order.events.all()] == ["pending_payment", "paid", "delivered"]


def test_repeated_request_id_returns_same_order_and_charges_once() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 5)
    fund_wallet(buyer, "50.00")

    first = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="same")
    again = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="same")

    assert not again.created
    assert again.order.pk == first.order.pk
    assert again.secrets == first.secrets
    assert Order.objects.count() == 1
    assert wallet_balance(user_id=buyer.pk) == Decimal("40.00")


@pytest.mark.parametrize("pay_with_wallet", [True, False])
def test_a_request_id_reused_for_another_sku_or_quantity_is_a_conflict(pay_with_wallet: bool) -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("10.00"))
    other = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 5)
    stock_sku(other, 5)
    fund_wallet(buyer, "50.00")
    first = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="same",
                           pay_with_wallet=pay_with_wallet)

    for sku_id, quantity in ((sku.pk, 2), (other.pk, 1)):
        with pytest.raises(ConflictError) as error:
            order_checkout(buyer_id=buyer.pk, sku_id=sku_id, quantity=quantity, request_id="same",
                           pay_with_wallet=pay_with_wallet)
        assert (error.value.status_code, error.value.code) == (409, "request_id_reused")
        assert error.value.message == "该 request_id 已用于另一笔订单（规格或数量不同）"
        assert error.value.extra == {"number": first.order.number}

    assert Order.objects.count() == 1
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 9
    assert wallet_balance(user_id=buyer.pk) == Decimal("40.00" if pay_with_wallet else "50.00")


def test_sold_out_changes_nothing() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create()
    stock_sku(sku, 2)
    fund_wallet(buyer, "100.00")

    with pytest.raises(SoldOutError) as error:
        order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=3)

    assert error.value.extra == {"available": 2}
    assert Order.objects.count() == 0
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 2
    assert wallet_balance(user_id=buyer.pk) == Decimal("100.00")


def test_insufficient_balance_changes_nothing() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("30.00"))
    stock_sku(sku, 2)
    fund_wallet(buyer, "50.00")

    with pytest.raises(InsufficientFundsError):
        order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=2)

    assert Order.objects.count() == 0
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 2
    assert wallet_balance(user_id=buyer.pk) == Decimal("50.00")


@pytest.mark.parametrize("pay_with_wallet", [True, False])
@pytest.mark.parametrize("sku_id", [0, 2**63, 10**30])
def test_an_id_no_sku_can_have_is_not_found_and_changes_nothing(sku_id: int, pay_with_wallet: bool) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "50.00")

    with pytest.raises(NotFoundError) as error:
        order_checkout(buyer_id=buyer.pk, sku_id=sku_id, quantity=1, pay_with_wallet=pay_with_wallet)

    assert error.value.code == "sku_not_found"
    assert Order.objects.count() == 0
    assert wallet_balance(user_id=buyer.pk) == Decimal("50.00")


def test_the_total_limit_is_what_the_column_holds() -> None:
    field = Order._meta.get_field("total_amount")
    assert isinstance(field, DecimalField)
    assert Decimal(10) ** (field.max_digits - field.decimal_places) - Decimal("0.01") == ORDER_TOTAL_MAX


@pytest.mark.parametrize("pay_with_wallet", [True, False])
def test_a_total_over_what_the_column_holds_is_refused_before_writing(pay_with_wallet: bool) -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("9999999999.99"), product__max_quantity=500)
    stock_sku(sku, 101)

    with pytest.raises(ApplicationError) as error:
        order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=101, pay_with_wallet=pay_with_wallet)

    assert (error.value.status_code, error.value.code) == (400, "order_total_too_large")
    assert error.value.extra == {"max": 100}
    assert error.value.message == "订单金额不能超过 ¥999999999999.99，该规格每单最多 100 件"
    assert Order.objects.count() == 0
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 101


def test_the_largest_total_is_stored_exactly() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("9999999999.99"), product__max_quantity=500)
    stock_sku(sku, 100)

    result = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=100, pay_with_wallet=False)

    assert Order.objects.get(pk=result.order.pk).total_amount == Decimal("999999999999.00")


def _unpaid(buyer_id: int, sku_id: int, request_id: str, quantity: int = 1) -> Order:
    return order_checkout(buyer_id=buyer_id, sku_id=sku_id, quantity=quantity, request_id=request_id,
                          pay_with_wallet=False).order


def test_a_buyer_holds_at_most_three_unpaid_orders() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 10)
    fund_wallet(buyer, "5.00")
    held = [_unpaid(buyer.pk, sku.pk, f"u{index}") for index in range(3)]

    with pytest.raises(ConflictError) as error:
        _unpaid(buyer.pk, sku.pk, "u3")

    assert (error.value.status_code, error.value.code) == (409, "unpaid_orders_limit")
    assert error.value.message == "您有 3 笔待支付订单，请先支付或取消后再下单"
    assert error.value.extra == {"limit": 3}
    assert Order.objects.filter(status=OrderStatus.PENDING_PAYMENT).count() == 3
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 7
    # At the limit: a replay still gets its order, a wallet-paid order and another buyer are not concerned.
    replay = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="u1", pay_with_wallet=False)
    assert (replay.created, replay.order.pk) == (False, held[1].pk)
    assert order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order.status == OrderStatus.DELIVERED
    assert _unpaid(UserFactory.create().pk, sku.pk, "other").status == OrderStatus.PENDING_PAYMENT
    # Paying, cancelling or the deadline passing makes room again.
    order_cancel(order_id=held[0].pk, buyer_id=buyer.pk)
    assert _unpaid(buyer.pk, sku.pk, "u4").status == OrderStatus.PENDING_PAYMENT
    Order.objects.filter(pk=held[2].pk).update(expires_at=timezone.now())
    assert _unpaid(buyer.pk, sku.pk, "u5").status == OrderStatus.PENDING_PAYMENT
    with pytest.raises(ConflictError):
        _unpaid(buyer.pk, sku.pk, "u6")


def test_the_unpaid_order_limit_is_a_setting(settings: Settings) -> None:
    settings.KAMENG_UNPAID_ORDERS_PER_BUYER = 1
    buyer = UserFactory.create()
    sku = SkuFactory.create()
    stock_sku(sku, 3)
    _unpaid(buyer.pk, sku.pk, "first")

    with pytest.raises(ConflictError) as error:
        _unpaid(buyer.pk, sku.pk, "second")

    assert error.value.message == "您有 1 笔待支付订单，请先支付或取消后再下单"
    assert Order.objects.count() == 1
