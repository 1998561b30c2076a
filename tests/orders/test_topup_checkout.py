"""Buying a direct top-up (直充): the buyer's input checked before any order exists, stored encrypted with the order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from pytest_django import DjangoCaptureOnCommitCallbacks

from kameng.catalog.topup_forms import TopupInputError
from kameng.core.errors import ApplicationError, ConflictError
from kameng.ledger.models import AccountKind
from kameng.ledger.selectors import account_balance_from_entries, wallet_balance
from kameng.ledger.services import system_account_id
from kameng.orders.fulfilment import order_fulfilment_enqueue
from kameng.orders.models import Order, OrderEvent, OrderStatus
from kameng.orders.services import order_checkout
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.topup_support import game_topup_sku, phone_topup_sku

pytestmark = pytest.mark.django_db


def _hold_balance() -> Decimal:
    return account_balance_from_entries(account_id=system_account_id(kind=AccountKind.ORDERS_IN_PROGRESS))


def _buy(buyer_id: int, sku_id: int, buyer_input: Any, request_id: str | None = "r1",
         by: PayBy = PayBy.WALLET) -> Any:
    return purchase_create(buyer_id=buyer_id, sku_id=sku_id, quantity=1, payment=PaymentChoice(by),
                           request_id=request_id, buyer_input=buyer_input)


def test_a_phone_topup_is_paid_with_its_number_stored_encrypted(
        django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = phone_topup_sku("49.50")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:  # the fulfilment is the suppliers' part
        result = _buy(buyer.pk, sku.pk, {"phone": "138 0013 8000"})

    order = Order.objects.get(pk=result.order.pk)
    assert result.created
    assert order.status == OrderStatus.PAID
    assert order.topup_target == '{"phone":"13800138000"}'
    handed = [callback for callback in callbacks if getattr(callback, "func", None) is order_fulfilment_enqueue]
    assert len(handed) == 1  # handed to fulfilment after commit
    assert wallet_balance(user_id=buyer.pk) == Decimal("50.50")
    assert _hold_balance() == Decimal("49.50")
    with connection.cursor() as cursor:
        cursor.execute("SELECT topup_target FROM orders_order WHERE id = %s", [order.pk])
        stored = bytes(cursor.fetchone()[0])
    assert b"13800138000" not in stored
    assert b"phone" not in stored
    assert [event.to_status for event in OrderEvent.objects.filter(order=order)] == ["pending_payment", "paid"]


def test_a_game_topup_left_waiting_for_payment_keeps_its_target() -> None:
    buyer = UserFactory.create()
    sku = game_topup_sku("30.00")

    result = _buy(buyer.pk, sku.pk, {"account": "player_2024", "region": "QQ区", "role": ""}, by=PayBy.RESERVE)

    order = Order.objects.get(pk=result.order.pk)
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert order.topup_target == '{"account":"player_2024","region":"QQ区"}'


@pytest.mark.parametrize(("buyer_input", "message"), [
    (None, "请填写手机号"),
    ({}, "请填写手机号"),
    ({"phone": "1380013800"}, "手机号格式不正确：请输入 11 位中国大陆手机号"),
    ({"phone": "13012345678"}, "该商品仅支持中国移动号码，您输入的是中国联通号码"),
    ({"phone": "13800138000", "qq": "1"}, "该商品没有充值字段「qq」，可填写：phone"),
])
def test_bad_input_is_refused_before_anything_is_written(buyer_input: Any, message: str) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = phone_topup_sku("49.50")

    with pytest.raises(ApplicationError) as refused:
        _buy(buyer.pk, sku.pk, buyer_input)

    assert refused.value.message == message
    assert refused.value.status_code == 400
    assert Order.objects.count() == 0
    assert OrderEvent.objects.count() == 0
    assert wallet_balance(user_id=buyer.pk) == Decimal("100.00")


def test_input_for_a_card_key_product_is_refused_and_an_empty_one_ignored() -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "20.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 2)

    with pytest.raises(ApplicationError) as refused:
        _buy(buyer.pk, sku.pk, {"account": "player1"})
    assert refused.value.code == "buyer_input_unexpected"
    assert Order.objects.count() == 0

    result = _buy(buyer.pk, sku.pk, {"account": ""}, request_id="r2")
    assert result.order.status == OrderStatus.DELIVERED
    assert Order.objects.get().topup_target is None


def test_the_checkout_itself_refuses_a_target_for_another_kind_and_a_topup_without_one() -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    card = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(card, 1)
    with pytest.raises(ApplicationError) as refused:
        order_checkout(buyer_id=buyer.pk, sku_id=card.pk, quantity=1, topup_target={"phone": "13800138000"})
    assert refused.value.code == "buyer_input_unexpected"
    with pytest.raises(TopupInputError) as missing:
        order_checkout(buyer_id=buyer.pk, sku_id=game_topup_sku().pk, quantity=1)
    assert missing.value.message == "请填写游戏账号"
    assert Order.objects.count() == 0


def test_a_replay_with_the_same_target_answers_the_order_and_another_target_is_a_conflict(
        django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = phone_topup_sku("49.50")
    with django_capture_on_commit_callbacks(execute=False):
        first = _buy(buyer.pk, sku.pk, {"phone": "13800138000"}, request_id="same")
        again = _buy(buyer.pk, sku.pk, {"phone": "+86 138 0013 8000"}, request_id="same")
        with pytest.raises(ConflictError) as reused:
            _buy(buyer.pk, sku.pk, {"phone": "13900139000"}, request_id="same")

    assert not again.created
    assert again.order.pk == first.order.pk
    assert reused.value.code == "request_id_reused"
    assert Order.objects.count() == 1
    assert wallet_balance(user_id=buyer.pk) == Decimal("50.50")
