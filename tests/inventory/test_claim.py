from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from kameng.catalog.models import Sku
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.inventory.services import (
    SoldOutError,
    card_keys_claim,
    card_keys_release,
    card_keys_sell_reserved,
    card_keys_void,
    decrypt_secrets,
)
from kameng.orders.models import Order
from tests.factories import SkuFactory, UserFactory, stock_sku

pytestmark = pytest.mark.django_db


def _order(sku: Sku, number: str) -> Order:
    return Order.objects.create(number=number, buyer=UserFactory.create(), sku=sku, title="测试", quantity=1,
                                unit_price=Decimal("9.50"), total_amount=Decimal("9.50"))


def _ids(status: str) -> set[int]:
    return set(CardKey.objects.filter(status=status).values_list("pk", flat=True))


def test_claim_reserves_or_sells_and_returns_decryptable_secrets() -> None:
    sku = SkuFactory.create()
    secrets = stock_sku(sku, 6)
    reserve_for, sell_for = _order(sku, "K1"), _order(sku, "K2")

    reserved = card_keys_claim(sku_id=sku.pk, order_id=reserve_for.pk, quantity=2, sell=False)
    sold = card_keys_claim(sku_id=sku.pk, order_id=sell_for.pk, quantity=3, sell=True)

    assert {pk for pk, _ in reserved} == set(CardKey.objects.filter(order=reserve_for).values_list("pk", flat=True))
    assert CardKey.objects.filter(order=reserve_for, status=CardKeyStatus.RESERVED).count() == 2
    assert CardKey.objects.filter(order=sell_for, status=CardKeyStatus.SOLD, sold_at__isnull=False).count() == 3
    plain = decrypt_secrets([token for _, token in reserved + sold])
    assert len(set(plain)) == 5
    assert set(plain) <= set(secrets)
    assert len(_ids(CardKeyStatus.AVAILABLE)) == 1


def test_claim_never_returns_a_void_sold_reserved_or_expired_key() -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 10)
    keys = list(CardKey.objects.order_by("id").values_list("pk", flat=True))
    other = _order(sku, "K0")
    card_keys_void(card_key_ids=keys[0:2])
    CardKey.objects.filter(pk__in=keys[2:4]).update(status=CardKeyStatus.SOLD, order=other)
    CardKey.objects.filter(pk__in=keys[4:5]).update(status=CardKeyStatus.RESERVED, order=other)
    CardKey.objects.filter(pk__in=keys[5:7]).update(expires_at=timezone.now() - timedelta(minutes=1))
    CardKey.objects.filter(pk__in=keys[7:8]).update(expires_at=timezone.now() + timedelta(days=30))
    order = _order(sku, "K1")

    claimed = card_keys_claim(sku_id=sku.pk, order_id=order.pk, quantity=3, sell=True)

    assert {pk for pk, _ in claimed} == set(keys[7:10])
    with pytest.raises(SoldOutError) as error:
        card_keys_claim(sku_id=sku.pk, order_id=_order(sku, "K2").pk, quantity=1, sell=True)
    assert error.value.extra == {"available": 0}
    assert error.value.message == "已售罄"


def test_claim_never_takes_another_skus_keys() -> None:
    sku, other_sku = SkuFactory.create(), SkuFactory.create()
    stock_sku(sku, 2)
    stock_sku(other_sku, 5)

    with pytest.raises(SoldOutError):
        card_keys_claim(sku_id=sku.pk, order_id=_order(sku, "K1").pk, quantity=3, sell=True)

    assert CardKey.objects.filter(sku=other_sku, status=CardKeyStatus.AVAILABLE).count() == 5


@pytest.mark.parametrize("trials", range(5))
def test_claims_cover_the_whole_stock_whatever_the_random_start(trials: int) -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 7, prefix=f"T{trials}")
    taken: list[int] = []

    for number in range(7):
        taken += [pk for pk, _ in card_keys_claim(sku_id=sku.pk, order_id=_order(sku, f"K{number}").pk,
                                                  quantity=1, sell=True)]

    assert len(taken) == len(set(taken)) == 7
    assert _ids(CardKeyStatus.AVAILABLE) == set()


def test_quantity_above_stock_raises_sold_out_and_claims_nothing() -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 3)
    order = _order(sku, "K1")

    with pytest.raises(SoldOutError) as error:
        card_keys_claim(sku_id=sku.pk, order_id=order.pk, quantity=4, sell=True)

    assert error.value.code == "sold_out"
    assert error.value.status_code == 409
    assert error.value.extra == {"available": 3}
    assert error.value.message == "库存不足，仅剩 3 件"
    assert CardKey.objects.filter(order=order).count() == 0
    assert len(_ids(CardKeyStatus.AVAILABLE)) == 3
    assert CardKey.objects.filter(sold_at__isnull=False).count() == 0


def test_sold_out_inside_a_transaction_leaves_stock_untouched() -> None:
    from django.db import transaction

    sku = SkuFactory.create()
    stock_sku(sku, 3)
    order = _order(sku, "K1")

    with pytest.raises(SoldOutError), transaction.atomic():
        card_keys_claim(sku_id=sku.pk, order_id=order.pk, quantity=4, sell=False)

    assert CardKey.objects.filter(order=order).count() == 0
    assert len(_ids(CardKeyStatus.AVAILABLE)) == 3


def test_release_puts_reserved_keys_back_and_leaves_sold_ones() -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 5)
    order = _order(sku, "K1")
    card_keys_claim(sku_id=sku.pk, order_id=order.pk, quantity=3, sell=False)
    sold_elsewhere = card_keys_claim(sku_id=sku.pk, order_id=_order(sku, "K2").pk, quantity=1, sell=True)

    assert card_keys_release(order_id=order.pk) == 3

    assert CardKey.objects.filter(order=order).count() == 0
    assert len(_ids(CardKeyStatus.AVAILABLE)) == 4
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE, sold_at__isnull=False).count() == 0
    assert _ids(CardKeyStatus.SOLD) == {sold_elsewhere[0][0]}
    assert card_keys_release(order_id=order.pk) == 0


def test_released_keys_can_be_claimed_again() -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 2)
    first = _order(sku, "K1")
    card_keys_claim(sku_id=sku.pk, order_id=first.pk, quantity=2, sell=False)
    card_keys_release(order_id=first.pk)

    claimed = card_keys_claim(sku_id=sku.pk, order_id=_order(sku, "K2").pk, quantity=2, sell=True)

    assert len(claimed) == 2


def test_sell_reserved_turns_only_the_orders_reserved_keys_into_sold() -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 4)
    order, other = _order(sku, "K1"), _order(sku, "K2")
    card_keys_claim(sku_id=sku.pk, order_id=order.pk, quantity=2, sell=False)
    card_keys_claim(sku_id=sku.pk, order_id=other.pk, quantity=1, sell=False)

    assert card_keys_sell_reserved(order_id=order.pk) == 2

    assert CardKey.objects.filter(order=order, status=CardKeyStatus.SOLD).count() == 2
    assert CardKey.objects.filter(order=other, status=CardKeyStatus.RESERVED).count() == 1


def test_void_only_voids_available_keys() -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 5)
    reserved_order, sold_order = _order(sku, "K1"), _order(sku, "K2")
    reserved = [pk for pk, _ in card_keys_claim(sku_id=sku.pk, order_id=reserved_order.pk, quantity=1, sell=False)]
    sold = [pk for pk, _ in card_keys_claim(sku_id=sku.pk, order_id=sold_order.pk, quantity=1, sell=True)]
    available = sorted(_ids(CardKeyStatus.AVAILABLE))

    voided = card_keys_void(card_key_ids=[*reserved, *sold, *available[:2]])

    assert voided == 2
    assert _ids(CardKeyStatus.VOID) == set(available[:2])
    assert _ids(CardKeyStatus.RESERVED) == set(reserved)
    assert _ids(CardKeyStatus.SOLD) == set(sold)
    assert _ids(CardKeyStatus.AVAILABLE) == set(available[2:])
    assert card_keys_void(card_key_ids=available[:2]) == 0
