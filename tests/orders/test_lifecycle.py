from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings

from kameng.accounts.models import User
from kameng.catalog.models import ProductStatus, Sku
from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.inventory.selectors import secrets_for_order
from kameng.ledger.models import AccountKind, Entry, Journal, JournalKind
from kameng.ledger.selectors import account_balance_from_entries, wallet_balance
from kameng.ledger.services import InsufficientFundsError, credit, debit, journal_post, system_account_id
from kameng.ledger.services import wallet_account_id as wallet_id_of
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.services import (
    order_cancel,
    order_checkout,
    order_fulfil,
    order_pay_with_wallet,
    orders_expire_due,
    orders_redrive_stuck,
)
from kameng.orders.tasks import expire_unpaid_orders
from tests.factories import ProductFactory, SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db


def _timeline(order: Order) -> list[tuple[str, str]]:
    return [(event.to_status, event.message) for event in OrderEvent.objects.filter(order=order).order_by("id")]


def _keys(order: Order, status: str) -> int:
    return CardKey.objects.filter(order=order, status=status).count()


def _pending(quantity: int = 2, price: str = "9.50", stock: int = 5,
             request_id: str | None = None) -> tuple[User, Sku, Order]:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal(price))
    stock_sku(sku, stock)
    result = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=quantity, request_id=request_id,
                            pay_with_wallet=False)
    return buyer, sku, result.order


def _mark_paid(order: Order) -> None:
    """What a gateway payment does: money in through clearing, the order paid, the keys still reserved."""
    clearing = system_account_id(kind=AccountKind.GATEWAY_CLEARING, suffix="epay")
    revenue = system_account_id(kind=AccountKind.PLATFORM_REVENUE)
    journal_post(kind=JournalKind.ORDER_PAYMENT, reference=order.number,
                 legs=[debit(clearing, order.total_amount), credit(revenue, order.total_amount)])
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID, paid_at=timezone.now())
    OrderEvent.objects.create(order=order, from_status=OrderStatus.PENDING_PAYMENT, to_status=OrderStatus.PAID,
                              kind=OrderEventKind.PAID)


# --- pending orders and paying them ------------------------------------------------------------------------

def test_pending_order_reserves_keys_and_charges_nothing() -> None:
    buyer, _sku, order = _pending(quantity=2)

    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert order.total_amount == Decimal("19.00")
    assert order.expires_at is not None
    assert timedelta(minutes=14) < order.expires_at - timezone.now() <= timedelta(minutes=15)
    assert order.paid_at is None
    assert _keys(order, CardKeyStatus.RESERVED) == 2
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 3
    assert Journal.objects.count() == 0
    assert _timeline(order) == [("pending_payment", "订单已创建，等待支付")]
    assert secrets_for_order(order_id=order.pk) == []
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")


def test_paying_with_the_wallet_sells_the_reserved_keys_and_debits_once() -> None:
    buyer, _sku, order = _pending(quantity=2)
    reserved = set(CardKey.objects.filter(order=order).values_list("pk", flat=True))
    fund_wallet(buyer, "50.00")

    paid = order_pay_with_wallet(order_id=order.pk, buyer_id=buyer.pk)

    assert paid.status == OrderStatus.DELIVERED
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.paid_at is not None
    assert order.delivered_at is not None
    assert set(CardKey.objects.filter(order=order, status=CardKeyStatus.SOLD).values_list("pk", flat=True)) == reserved
    assert len(secrets_for_order(order_id=order.pk)) == 2
    assert wallet_balance(user_id=buyer.pk) == Decimal("31.00")
    payments = Journal.objects.filter(kind=JournalKind.ORDER_PAYMENT)
    assert list(payments.values_list("reference", flat=True)) == [order.number]
    assert list(Entry.objects.filter(journal__in=payments).values_list("side", "amount").order_by("side")) == [
        ("C", Decimal("19.00")), ("D", Decimal("19.00"))]
    assert [to for to, _ in _timeline(order)] == ["pending_payment", "paid", "delivered"]
    assert _timeline(order)[1] == ("paid", "已使用钱包余额支付")


def test_paying_twice_is_a_conflict_and_debits_once() -> None:
    buyer, _sku, order = _pending(quantity=1)
    fund_wallet(buyer, "50.00")
    order_pay_with_wallet(order_id=order.pk, buyer_id=buyer.pk)

    with pytest.raises(ConflictError) as error:
        order_pay_with_wallet(order_id=order.pk, buyer_id=buyer.pk)

    assert error.value.code == "not_payable"
    assert error.value.message == "订单当前状态为「已发货」，无需支付"
    assert wallet_balance(user_id=buyer.pk) == Decimal("40.50")
    assert Journal.objects.filter(kind=JournalKind.ORDER_PAYMENT).count() == 1
    assert OrderEvent.objects.filter(order=order).count() == 3


def test_paying_without_enough_balance_changes_nothing() -> None:
    buyer, _sku, order = _pending(quantity=2)
    fund_wallet(buyer, "10.00")

    with pytest.raises(InsufficientFundsError):
        order_pay_with_wallet(order_id=order.pk, buyer_id=buyer.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert _keys(order, CardKeyStatus.RESERVED) == 2
    assert wallet_balance(user_id=buyer.pk) == Decimal("10.00")
    assert OrderEvent.objects.filter(order=order).count() == 1


def test_paying_someone_elses_order_is_not_found() -> None:
    _buyer, _sku, order = _pending(quantity=1)
    stranger = UserFactory.create()
    fund_wallet(stranger, "50.00")

    with pytest.raises(NotFoundError):
        order_pay_with_wallet(order_id=order.pk, buyer_id=stranger.pk)

    assert wallet_balance(user_id=stranger.pk) == Decimal("50.00")


def test_paying_after_the_deadline_is_refused() -> None:
    buyer, _sku, order = _pending(quantity=1)
    fund_wallet(buyer, "50.00")
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(ConflictError) as error:
        order_pay_with_wallet(order_id=order.pk, buyer_id=buyer.pk)

    assert error.value.code == "order_expired"
    assert wallet_balance(user_id=buyer.pk) == Decimal("50.00")


# --- expiry and cancellation ---------------------------------------------------------------------------------

def test_expiry_does_nothing_before_the_deadline() -> None:
    _buyer, _sku, order = _pending(quantity=2)

    assert orders_expire_due() == 0

    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert _keys(order, CardKeyStatus.RESERVED) == 2
    assert OrderEvent.objects.filter(order=order).count() == 1


def test_expiry_after_the_deadline_releases_keys_and_writes_the_event() -> None:
    _buyer, _sku, order = _pending(quantity=2)
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert orders_expire_due() == 1

    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert CardKey.objects.filter(order=order).count() == 0
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 5
    event = OrderEvent.objects.filter(order=order).order_by("id").last()
    assert event is not None
    assert (event.from_status, event.to_status) == ("pending_payment", "expired")
    assert event.get_to_status_display() == "已过期"
    assert event.message == "超时未支付，订单已关闭，库存已释放"
    assert orders_expire_due() == 0  # idempotent


def test_expire_task_runs_eagerly() -> None:
    _buyer, _sku, due = _pending(quantity=1)
    _other_buyer, _other_sku, fresh = _pending(quantity=1)
    Order.objects.filter(pk=due.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    result = expire_unpaid_orders.delay()

    assert result.get() == 1
    assert Order.objects.get(pk=due.pk).status == OrderStatus.EXPIRED
    assert Order.objects.get(pk=fresh.pk).status == OrderStatus.PENDING_PAYMENT


def test_cancel_releases_the_keys() -> None:
    buyer, _sku, order = _pending(quantity=3)

    order_cancel(order_id=order.pk, buyer_id=buyer.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert CardKey.objects.filter(order=order).count() == 0
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 5
    assert _timeline(order)[-1] == ("cancelled", "订单已取消，库存已释放")


def test_cancel_is_refused_for_a_stranger_and_for_a_delivered_order() -> None:
    buyer, _sku, order = _pending(quantity=1)
    stranger = UserFactory.create()

    with pytest.raises(NotFoundError):
        order_cancel(order_id=order.pk, buyer_id=stranger.pk)

    fund_wallet(buyer, "20.00")
    order_pay_with_wallet(order_id=order.pk, buyer_id=buyer.pk)
    with pytest.raises(ConflictError) as error:
        order_cancel(order_id=order.pk, buyer_id=buyer.pk)

    assert error.value.code == "not_cancellable"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED
    assert _keys(order, CardKeyStatus.SOLD) == 1


# --- fulfilment, refunds of failed deliveries, the sweeper -------------------------------------------------

def test_fulfil_delivers_a_paid_order_from_its_reserved_keys() -> None:
    _buyer, _sku, order = _pending(quantity=2)
    _mark_paid(order)

    fulfilled = order_fulfil(order_id=order.pk)

    assert fulfilled.status == OrderStatus.DELIVERED
    assert _keys(order, CardKeyStatus.SOLD) == 2
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 3
    assert [to for to, _ in _timeline(order)] == ["pending_payment", "paid", "delivered"]

    again = order_fulfil(order_id=order.pk)  # idempotent: a second delivery of the task changes nothing

    assert again.status == OrderStatus.DELIVERED
    assert _keys(order, CardKeyStatus.SOLD) == 2
    assert OrderEvent.objects.filter(order=order).count() == 3


def test_fulfil_tops_up_from_stock_when_reserved_keys_were_withdrawn() -> None:
    _buyer, _sku, order = _pending(quantity=2, stock=4)
    withdrawn = CardKey.objects.filter(order=order).order_by("id").first()
    assert withdrawn is not None
    CardKey.objects.filter(pk=withdrawn.pk).update(status=CardKeyStatus.VOID, order=None)
    _mark_paid(order)

    order_fulfil(order_id=order.pk)

    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED
    assert _keys(order, CardKeyStatus.SOLD) == 2
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 1


def test_fulfil_without_keys_fails_delivery_and_refunds_the_wallet_exactly() -> None:
    buyer, _sku, order = _pending(quantity=2, price="12.34", stock=2)
    CardKey.objects.filter(order=order).update(status=CardKeyStatus.VOID)  # staff withdrew the stock
    _mark_paid(order)
    revenue = system_account_id(kind=AccountKind.PLATFORM_REVENUE)

    result = order_fulfil(order_id=order.pk)

    assert result.status == OrderStatus.REFUNDED
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED
    assert wallet_balance(user_id=buyer.pk) == Decimal("24.68")
    refund = Journal.objects.get(kind=JournalKind.ORDER_REFUND)
    assert refund.reference == order.number
    assert list(refund.entries.values_list("account_id", "side", "amount").order_by("side")) == [
        (wallet_id_of(user_id=buyer.pk), "C", Decimal("24.68")), (revenue, "D", Decimal("24.68"))]
    assert account_balance_from_entries(account_id=revenue) == Decimal("0.00")
    assert _timeline(order)[-2:] == [("delivery_failed", "库存不足，无法发货"),
                                     ("refunded", "发货失败，¥24.68 已退回钱包余额")]
    assert _keys(order, CardKeyStatus.SOLD) == 0

    order_fulfil(order_id=order.pk)  # a re-drive after the refund does not refund twice

    assert wallet_balance(user_id=buyer.pk) == Decimal("24.68")
    assert Journal.objects.filter(kind=JournalKind.ORDER_REFUND).count() == 1


def test_a_partly_filled_failed_delivery_gives_every_key_back_to_stock() -> None:
    buyer, _sku, order = _pending(quantity=2, price="5.00", stock=2)
    # One of the two reserved keys was withdrawn by staff and no stock is left to replace it: the delivery sells
    # the remaining reserved key, then runs out.
    withdrawn = CardKey.objects.filter(order=order).order_by("id").first()
    assert withdrawn is not None
    CardKey.objects.filter(pk=withdrawn.pk).update(status=CardKeyStatus.VOID, order=None)
    _mark_paid(order)

    result = order_fulfil(order_id=order.pk)

    assert result.status == OrderStatus.REFUNDED
    assert wallet_balance(user_id=buyer.pk) == Decimal("10.00")
    assert not CardKey.objects.filter(order=order).exists()  # a refunded order keeps no key
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 1  # the one it held is for sale again


def test_redrive_picks_up_an_old_paid_order_and_leaves_fresh_ones() -> None:
    _buyer, _sku, stuck = _pending(quantity=1)
    _other, _other_sku, fresh = _pending(quantity=1)
    _mark_paid(stuck)
    _mark_paid(fresh)
    Order.objects.filter(pk=stuck.pk).update(updated_at=timezone.now() - timedelta(minutes=5))

    assert orders_redrive_stuck(older_than_seconds=60) == 1

    assert Order.objects.get(pk=stuck.pk).status == OrderStatus.DELIVERED
    assert _keys(stuck, CardKeyStatus.SOLD) == 1
    assert Order.objects.get(pk=fresh.pk).status == OrderStatus.PAID
    assert _keys(fresh, CardKeyStatus.RESERVED) == 1
    assert orders_redrive_stuck(older_than_seconds=60) == 0


# --- what checkout refuses -----------------------------------------------------------------------------------

@pytest.mark.parametrize("quantity", [1, 6])
def test_quantity_outside_the_products_limits_is_refused(quantity: int) -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(product=ProductFactory.create(min_quantity=2, max_quantity=5))
    stock_sku(sku, 10)
    fund_wallet(buyer, "500.00")

    with pytest.raises(ApplicationError) as error:
        order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=quantity)

    assert error.value.code == "invalid_quantity"
    assert error.value.message == "购买数量需在 2–5 之间"
    assert error.value.extra == {"min": 2, "max": 5}
    assert Order.objects.count() == 0
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 10


def test_platform_maximum_caps_the_products_maximum(settings: Settings) -> None:
    settings.KAMENG_MAX_ORDER_QUANTITY = 3
    buyer = UserFactory.create()
    sku = SkuFactory.create()
    stock_sku(sku, 10)

    with pytest.raises(ApplicationError) as error:
        order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=4, pay_with_wallet=False)

    assert error.value.message == "购买数量需在 1–3 之间"
    assert Order.objects.count() == 0


@pytest.mark.parametrize("quantity", [0, -1, True, "2", 1.0])
def test_quantity_that_is_not_a_positive_integer_is_refused(quantity: object) -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create()
    stock_sku(sku, 3)

    with pytest.raises(ApplicationError) as error:
        order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=quantity, pay_with_wallet=False)  # type: ignore[arg-type]

    assert error.value.code == "invalid_quantity"
    assert Order.objects.count() == 0


def test_an_off_shelf_product_is_refused() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(product=ProductFactory.create(status=ProductStatus.OFF_SHELF))
    stock_sku(sku, 3)
    fund_wallet(buyer, "50.00")

    with pytest.raises(NotFoundError) as error:
        order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1)

    assert error.value.code == "sku_not_found"
    assert error.value.message == "商品不存在或已下架"
    assert Order.objects.count() == 0
    assert wallet_balance(user_id=buyer.pk) == Decimal("50.00")


def test_an_inactive_sku_is_refused() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(is_active=False)
    stock_sku(sku, 3)

    with pytest.raises(NotFoundError):
        order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False)

    assert Order.objects.count() == 0


@pytest.mark.parametrize("request_id", ["r" * 65, "bad\nid", "tab\tid"])
def test_an_invalid_request_id_is_refused(request_id: str) -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create()
    stock_sku(sku, 3)

    with pytest.raises(ApplicationError) as error:
        order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id=request_id, pay_with_wallet=False)

    assert error.value.code == "invalid_request_id"
    assert error.value.message == "request_id 最长 64 个可见字符"
    assert Order.objects.count() == 0


def test_a_request_id_of_64_characters_is_accepted_and_idempotent() -> None:
    buyer, sku, order = _pending(quantity=1, request_id="r" * 64)

    again = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="r" * 64, pay_with_wallet=False)

    assert not again.created
    assert again.order.pk == order.pk
    assert Order.objects.count() == 1
    assert _keys(order, CardKeyStatus.RESERVED) == 1


def test_the_same_request_id_from_two_buyers_makes_two_orders() -> None:
    _first_buyer, sku, first = _pending(quantity=1, request_id="same")
    other = UserFactory.create()

    second = order_checkout(buyer_id=other.pk, sku_id=sku.pk, quantity=1, request_id="same", pay_with_wallet=False)

    assert second.created
    assert second.order.pk != first.pk


def test_the_database_refuses_a_second_order_with_the_same_request_id() -> None:
    # Regression (MariaDB): the unique constraint had a `condition`, which MySQL/MariaDB silently drop.
    from django.db import IntegrityError, transaction

    buyer, sku, order = _pending(quantity=1, request_id="dup")

    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(number="K-dup", buyer=buyer, sku=sku, title="测试", quantity=1,
                             unit_price=Decimal("9.50"), total_amount=Decimal("9.50"), request_id="dup")

    assert list(Order.objects.values_list("pk", flat=True)) == [order.pk]
