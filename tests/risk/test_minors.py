"""Minors and game goods (未成年人, 2019 notice) at the order checkpoint: the 8/16/18 birthdays exactly, the per-payment
and per-month limits to the fen, unverified buyers asked to verify, through the real purchase path."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from kameng.accounts.models import RealName, RealNameStatus, User
from kameng.catalog.models import Sku
from kameng.orders.models import Order
from kameng.purchases.services import PayBy, PaymentChoice, month_start, purchase_create
from kameng.risk.engine import RealNameRequiredError, RiskBlockedError
from kameng.risk.models import MinorsPolicy, RiskDecision
from tests.accounts.ids import id_number
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db
WALLET = PaymentChoice(PayBy.WALLET)


def years_ago(years: int, *, days: int = 0) -> date:
    """The birth date of someone `years` old today exactly (on their birthday), moved by `days`."""
    today = timezone.localdate()
    try:
        born = today.replace(year=today.year - years)
    except ValueError:  # 29 February: the birthday falls on 1 March in a common year
        born = date(today.year - years, 3, 1)
    return born + timedelta(days=days)


def buyer_born(born: date | None) -> User:
    buyer = UserFactory.create()
    fund_wallet(buyer, "2000.00")
    if born is not None:
        RealName.objects.create(user=buyer, status=RealNameStatus.VERIFIED, name="张小明",
                                id_number=id_number(born=born.strftime("%Y%m%d")))
    return buyer


def game_sku(price: str, *, is_game: bool = True) -> Sku:
    sku = SkuFactory.create(price=Decimal(price), product__is_game_goods=is_game, product__name="王者荣耀点券")
    stock_sku(sku, 10)
    return sku


def buy(buyer: User, sku: Sku, quantity: int = 1, request_id: str | None = None) -> Order:
    return purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=quantity, payment=WALLET,
                           request_id=request_id).order


def test_on_the_8th_birthday_a_buyer_may_pay_50_and_the_day_before_nothing() -> None:
    sku = game_sku("50.00")
    buy(buyer_born(years_ago(8)), sku)
    with pytest.raises(RiskBlockedError) as refused:
        buy(buyer_born(years_ago(8, days=1)), sku)  # 8 tomorrow: 7 today
    assert refused.value.status_code == 403
    assert refused.value.message == "根据未成年人保护相关规定，未满 8 周岁的用户不能购买游戏类商品"


def test_under_16_one_payment_is_at_most_50_yuan() -> None:
    buyer = buyer_born(years_ago(16, days=1))  # 15
    buy(buyer, game_sku("50.00"))
    with pytest.raises(RiskBlockedError) as refused:
        buy(buyer, game_sku("50.01"))
    assert refused.value.message == "根据未成年人保护相关规定，未满 16 周岁的用户购买游戏类商品单笔不能超过 ¥50.00"


def test_on_the_16th_birthday_one_payment_may_be_100_yuan_and_not_a_fen_more() -> None:
    buyer = buyer_born(years_ago(16))
    buy(buyer, game_sku("100.00"))
    with pytest.raises(RiskBlockedError) as refused:
        buy(buyer, game_sku("100.01"))
    assert "未满 18 周岁" in refused.value.message
    assert "¥100.00" in refused.value.message


def test_on_the_18th_birthday_there_is_no_limit_and_the_day_before_there_is() -> None:
    sku = game_sku("500.00")
    buy(buyer_born(years_ago(18)), sku)
    with pytest.raises(RiskBlockedError):
        buy(buyer_born(years_ago(18, days=1)), sku)


def test_a_month_of_200_00_passes_and_200_01_is_refused() -> None:
    buyer = buyer_born(years_ago(10))
    fifty = game_sku("50.00")
    for number in range(4):
        buy(buyer, fifty, request_id=f"m-{number}")  # 200.00 this month
    with pytest.raises(RiskBlockedError) as refused:
        buy(buyer, game_sku("0.01"))
    assert refused.value.message == ("根据未成年人保护相关规定，未满 16 周岁的用户每月购买游戏类商品累计不能超过"
                                     " ¥200.00（本月已购 ¥200.00）")
    stored = RiskDecision.objects.get()
    assert stored.inputs["month_spent"] == "200.00"
    assert stored.inputs["age"] == 10


def test_the_teen_month_limit_is_400() -> None:
    buyer = buyer_born(years_ago(17))
    hundred = game_sku("100.00")
    for number in range(4):
        buy(buyer, hundred, request_id=f"t-{number}")
    with pytest.raises(RiskBlockedError):
        buy(buyer, game_sku("0.01"))


def test_last_months_orders_and_other_goods_do_not_count(monkeypatch: pytest.MonkeyPatch) -> None:
    buyer = buyer_born(years_ago(10))
    fifty = game_sku("50.00")
    old = [buy(buyer, fifty, request_id=f"old-{number}") for number in range(4)]
    Order.objects.filter(pk__in=[order.pk for order in old]).update(
        paid_at=month_start() - timedelta(seconds=1), created_at=month_start() - timedelta(days=2))
    for number in range(3):
        buy(buyer, game_sku("60.00", is_game=False), request_id=f"other-{number}")
    buy(buyer, fifty, request_id="new")


def test_unpaid_game_orders_of_the_month_count_too() -> None:
    buyer = buyer_born(years_ago(10))
    fifty = game_sku("50.00")
    for number in range(3):  # waiting for payment: paid later without another order check
        purchase_create(buyer_id=buyer.pk, sku_id=fifty.pk, quantity=1, payment=PaymentChoice(PayBy.RESERVE),
                        request_id=f"r-{number}")
    buy(buyer, fifty, request_id="paid")
    with pytest.raises(RiskBlockedError):
        buy(buyer, game_sku("0.01"))


def test_an_unverified_buyer_of_game_goods_is_asked_to_verify_first() -> None:
    with pytest.raises(RealNameRequiredError) as asked:
        buy(buyer_born(None), game_sku("5.00"))
    assert (asked.value.status_code, asked.value.code) == (403, "realname_required")
    assert asked.value.message == "购买游戏类商品前请先完成实名认证"
    assert asked.value.extra["url"] == "/account/realname/"


def test_verification_first_can_be_switched_off_and_other_goods_never_ask() -> None:
    buy(buyer_born(None), game_sku("5.00", is_game=False))
    buy(buyer_born(years_ago(7)), game_sku("5.00", is_game=False))  # not game goods: no age limit
    policy = MinorsPolicy.objects.get(pk=1)
    policy.require_verification = False
    policy.save()
    buy(buyer_born(None), game_sku("5.00"))


def test_staff_edited_limits_apply() -> None:
    policy = MinorsPolicy.objects.get(pk=1)
    policy.child_per_payment = Decimal("30.00")
    policy.save()
    with pytest.raises(RiskBlockedError) as refused:
        buy(buyer_born(years_ago(10)), game_sku("30.01"))
    assert "¥30.00" in refused.value.message


def test_a_product_marked_game_goods_after_a_purchase_is_limited_at_once() -> None:
    sku = game_sku("60.00", is_game=False)
    buyer = buyer_born(years_ago(10))
    buy(buyer, sku, request_id="before")
    product = sku.product
    product.is_game_goods = True
    product.save()
    with pytest.raises(RiskBlockedError):
        buy(buyer, sku, request_id="after")


def test_the_month_starts_at_midnight_in_china() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    utc = ZoneInfo("UTC")
    assert month_start(datetime(2026, 3, 31, 16, 30, tzinfo=utc)) == datetime(2026, 4, 1, tzinfo=shanghai)
    assert month_start(datetime(2026, 3, 31, 15, 59, tzinfo=utc)) == datetime(2026, 3, 1, tzinfo=shanghai)
