"""The Open API v1 under real concurrency on PostgreSQL: one request_no gives one order however many copies of it
arrive at once; one wallet paying many orders at once ends exact. Run on the single checkout path and through the
group commit."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.orders.group_commit import writer_stop
from kameng.orders.models import Order
from kameng.resellers.models import OpenApiOrder
from tests.concurrency.threads import requires_postgresql, run_in_threads
from tests.factories import SkuFactory, stock_sku
from tests.resellers.openapi_support import call, reseller_with_key

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True, params=["single", "group_commit"])
def checkout_path(request: pytest.FixtureRequest, settings: Settings) -> Iterator[str]:
    requires_postgresql()
    settings.KAMENG_CHECKOUT_GROUP_COMMIT = request.param == "group_commit"
    settings.KAMENG_OPENAPI_RATE_PER_MINUTE = 0
    yield request.param
    writer_stop()


def test_the_same_request_no_at_once_makes_one_order() -> None:
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 10)
    body = {"request_no": "SAME-1", "sku_id": sku.pk, "quantity": 2}

    outcomes = run_in_threads(12, lambda _: call(Client(), holder, "POST", "/orders", body))

    assert [o.error for o in outcomes if o.error] == []
    answers = [o.value for o in outcomes if o.value is not None]
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 11 + [201]
    assert len({answer.json()["order_no"] for answer in answers}) == 1
    assert len({tuple(answer.json()["keys"]) for answer in answers}) == 1
    assert Order.objects.count() == 1
    assert OpenApiOrder.objects.count() == 1
    assert CardKey.objects.filter(status=CardKeyStatus.SOLD).count() == 2
    assert wallet_balance(user_id=holder.user.pk) == Decimal("81.00")
    assert ledger_problems() == []


def test_the_same_request_no_with_different_bodies_at_once_makes_one_order() -> None:
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create(price=Decimal("1.00"))
    stock_sku(sku, 40)

    outcomes = run_in_threads(8, lambda i: call(Client(), holder, "POST", "/orders",
                                                {"request_no": "SAME-2", "sku_id": sku.pk, "quantity": 1 + i % 2}))

    assert [o.error for o in outcomes if o.error] == []
    answers = [o.value for o in outcomes if o.value is not None]
    order = Order.objects.get()
    assert sorted({answer.status_code for answer in answers}) in ([201, 409], [200, 201, 409])
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["code"] == "request_no_conflict"
        else:
            assert answer.json()["quantity"] == order.quantity
    assert wallet_balance(user_id=holder.user.pk) == Decimal("100.00") - order.quantity * Decimal("1.00")


def test_one_wallet_pays_many_orders_at_once_exactly() -> None:
    holder = reseller_with_key(funds="50.00")
    sku = SkuFactory.create(price=Decimal("3.00"))
    stock_sku(sku, 30)

    outcomes = run_in_threads(20, lambda i: call(Client(), holder, "POST", "/orders",
                                                 {"request_no": f"W-{i}", "sku_id": sku.pk, "quantity": 1}))

    assert [o.error for o in outcomes if o.error] == []
    statuses = [o.value.status_code for o in outcomes if o.value is not None]
    assert sorted(set(statuses)) == [201, 402]
    assert statuses.count(201) == 16  # ¥50 buys 16 at ¥3.00
    assert wallet_balance(user_id=holder.user.pk) == Decimal("2.00")
    assert CardKey.objects.filter(status=CardKeyStatus.SOLD).count() == 16
    assert ledger_problems() == []


def test_a_flash_sale_sells_every_key_once_and_every_loser_is_a_clean_sold_out() -> None:
    """More buyers than keys, at once, then more after the sale: exactly the keys are sold, none twice; every loser
    (in the race, or answered from the sold-out memory afterwards) is 409 sold_out; a winner's replay is its order."""
    keys, buyers = 6, 24
    holders = [reseller_with_key(funds="20.00") for _ in range(buyers)]
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, keys)

    outcomes = run_in_threads(buyers, lambda i: call(Client(), holders[i], "POST", "/orders",
                                                     {"request_no": f"F-{i}", "sku_id": sku.pk, "quantity": 1}))
    late = [call(Client(), holders[0], "POST", "/orders", {"request_no": f"LATE-{n}", "sku_id": sku.pk,
                                                           "quantity": 1}) for n in range(3)]

    assert [o.error for o in outcomes if o.error] == []
    answers = [o.value for o in outcomes if o.value is not None]
    winners = [answer for answer in answers if answer.status_code == 201]
    losers = [answer for answer in answers if answer.status_code != 201] + late
    assert len(winners) == keys
    assert all(answer.status_code == 409 and answer.json()["code"] == "sold_out" for answer in losers)
    sold = [key for answer in winners for key in answer.json()["keys"]]
    assert len(sold) == len(set(sold)) == keys
    assert CardKey.objects.filter(sku=sku, status=CardKeyStatus.SOLD).count() == keys
    winner, won = next((i, o.value) for i, o in enumerate(outcomes)
                       if o.value is not None and o.value.status_code == 201)
    replay = call(Client(), holders[winner], "POST", "/orders", {"request_no": f"F-{winner}", "sku_id": sku.pk,
                                                                 "quantity": 1})
    assert (replay.status_code, replay.json()["keys"]) == (200, won.json()["keys"])
    assert ledger_problems() == []
