from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client
from django.urls import reverse

from kameng.accounts.models import User
from kameng.catalog.models import Sku
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from tests.factories import CategoryFactory, ProductFactory, SkuFactory, UserFactory, fund_wallet, stock_sku

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse

pytestmark = pytest.mark.django_db


def _buyer(client: Client, funds: str | None = None) -> User:
    user = UserFactory.create()
    if funds is not None:
        fund_wallet(user, funds)
    client.force_login(user)
    return user


def _buy(client: Client, sku: Sku, quantity: int, request_id: str = "req-1") -> _MonkeyPatchedWSGIResponse:
    return client.post(reverse("web:buy", args=[sku.product_id]),
                       {"sku": sku.pk, "quantity": quantity, "request_id": request_id})


def test_home_lists_products_with_price_and_stock(client: Client) -> None:
    sku = SkuFactory.create(product__name="王者荣耀点券", name="60 点券", price=Decimal("5.80"))
    stock_sku(sku, 7)

    response = client.get(reverse("web:home"))

    body = response.content.decode()
    assert response.status_code == 200
    assert "王者荣耀点券" in body
    assert "60 点券" in body
    assert "¥5.80" in body
    assert "库存 7" in body


def test_home_filters_by_category(client: Client) -> None:
    games = CategoryFactory.create(name="游戏", slug="games")
    SkuFactory.create(product__name="网易一卡通", product__category=games)
    video = CategoryFactory.create(name="视频会员", slug="video")
    SkuFactory.create(product__name="爱奇艺会员", product__category=video)

    body = client.get(reverse("web:home"), {"category": "games"}).content.decode()

    assert "网易一卡通" in body
    assert "爱奇艺会员" not in body


def test_product_page_offers_skus_and_a_fresh_request_id(client: Client) -> None:
    product = ProductFactory.create(name="Steam 充值卡")
    small = SkuFactory.create(product=product, name="50 元", price=Decimal("48.00"))
    SkuFactory.create(product=product, name="100 元", price=Decimal("96.00"))
    stock_sku(small, 2)

    first = client.get(reverse("web:product", args=[product.pk])).content.decode()
    second = client.get(reverse("web:product", args=[product.pk])).content.decode()

    assert "50 元" in first
    assert "100 元" in first
    assert "¥96.00" in first
    request_ids = [re.search(r'name="request_id" value="([0-9a-f]{32})"', body) for body in (first, second)]
    assert all(request_ids)
    assert request_ids[0].group(1) != request_ids[1].group(1)  # type: ignore[union-attr]


def test_buy_with_wallet_delivers_keys_on_the_order_page_and_in_the_txt(client: Client) -> None:
    buyer = _buyer(client, "100.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    secrets = stock_sku(sku, 5)

    response = _buy(client, sku, 3)

    order = Order.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("web:order_detail", args=[order.number])
    assert order.status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=buyer.pk) == Decimal("71.50")
    delivered = list(CardKey.objects.filter(order=order, status=CardKeyStatus.SOLD).values_list("pk", flat=True))
    assert len(delivered) == 3

    page = client.get(response["Location"])
    body = page.content.decode()
    shown = re.findall(r'<code data-testid="card-key">([^<]+)</code>', body)
    assert len(set(shown)) == 3  # distinct keys
    assert set(shown) <= set(secrets)
    assert "购买成功，卡密已发放" in body
    assert "no-store" in page["Cache-Control"]
    assert "¥28.50" in body

    txt = client.get(reverse("web:order_keys_txt", args=[order.number]))
    assert txt.status_code == 200
    assert txt["Content-Disposition"] == f'attachment; filename="{order.number}.txt"'
    assert txt.content.decode().splitlines() == shown
    assert "no-store" in txt["Cache-Control"]


def test_double_submit_with_same_request_id_creates_one_order(client: Client) -> None:
    buyer = _buyer(client, "100.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 5)

    first = _buy(client, sku, 2, request_id="form-abc")
    second = _buy(client, sku, 2, request_id="form-abc")

    assert Order.objects.count() == 1
    assert first["Location"] == second["Location"]
    assert wallet_balance(user_id=buyer.pk) == Decimal("80.00")
    assert CardKey.objects.filter(status=CardKeyStatus.SOLD).count() == 2


def test_a_stale_form_reused_for_another_quantity_shows_the_product_page_again(client: Client) -> None:
    buyer = _buyer(client, "100.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 5)
    first = _buy(client, sku, 1, request_id="form-abc")

    response = _buy(client, sku, 3, request_id="form-abc")

    body = response.content.decode()
    assert first.status_code == 302
    assert response.status_code == 409
    assert "页面已过期：这张表单已经提交过另一笔订单。请确认规格和数量后重新提交" in body
    assert 'data-code="request_id_reused"' in body
    fresh = re.search(r'name="request_id" value="([0-9a-f]{32})"', body)
    assert fresh is not None  # a new id: submitting again places the order asked for
    assert 'value="3"' in body  # the quantity the buyer chose is kept
    assert Order.objects.count() == 1
    assert wallet_balance(user_id=buyer.pk) == Decimal("90.00")

    again = _buy(client, sku, 3, request_id=fresh.group(1))
    assert again.status_code == 302
    assert Order.objects.count() == 2
    assert wallet_balance(user_id=buyer.pk) == Decimal("60.00")


def test_a_fourth_unpaid_order_is_refused_on_the_product_page(client: Client) -> None:
    _buyer(client, "1.00")  # short of every total: each purchase waits for payment
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 10)
    placed = [_buy(client, sku, 1, request_id=f"form-{index}").status_code for index in range(3)]

    response = _buy(client, sku, 1, request_id="form-3")

    assert placed == [302, 302, 302]
    assert response.status_code == 409
    assert "您有 3 笔待支付订单，请先支付或取消后再下单" in response.content.decode()
    assert Order.objects.filter(status=OrderStatus.PENDING_PAYMENT).count() == 3
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 7


def test_sold_out_shows_message_with_409_and_keeps_the_form(client: Client) -> None:
    buyer = _buyer(client, "100.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 2)

    response = _buy(client, sku, 3, request_id="keep-me")

    body = response.content.decode()
    assert response.status_code == 409
    assert "库存不足，仅剩 2 件" in body
    assert 'value="keep-me"' in body
    assert 'value="3"' in body
    assert Order.objects.count() == 0
    assert wallet_balance(user_id=buyer.pk) == Decimal("100.00")


def test_sold_out_with_no_stock_says_sold_out(client: Client) -> None:
    _buyer(client, "100.00")
    sku = SkuFactory.create()

    response = _buy(client, sku, 1)

    assert response.status_code == 409
    assert "已售罄" in response.content.decode()


def test_quantity_above_the_product_limit_is_400(client: Client) -> None:
    _buyer(client, "1000.00")
    sku = SkuFactory.create(product__max_quantity=5)
    stock_sku(sku, 10)

    response = _buy(client, sku, 6)

    assert response.status_code == 400
    assert "购买数量需在 1–5 之间" in response.content.decode()
    assert Order.objects.count() == 0


@pytest.mark.parametrize("quantity", [10_001, 10**30])
def test_a_huge_quantity_is_a_form_error_not_a_500(client: Client, quantity: int) -> None:
    buyer = _buyer(client, "100.00")
    sku = SkuFactory.create()
    stock_sku(sku, 1)

    response = _buy(client, sku, quantity)

    assert response.status_code == 400
    assert "请检查规格和数量" in response.content.decode()
    assert Order.objects.count() == 0
    assert wallet_balance(user_id=buyer.pk) == Decimal("100.00")


def test_non_numeric_quantity_is_400(client: Client) -> None:
    _buyer(client, "100.00")
    sku = SkuFactory.create()
    stock_sku(sku, 1)

    response = client.post(reverse("web:buy", args=[sku.product_id]), {"sku": sku.pk, "quantity": "two"})

    assert response.status_code == 400
    assert Order.objects.count() == 0


def test_sku_of_another_product_is_refused(client: Client) -> None:
    _buyer(client, "100.00")
    sku = SkuFactory.create()
    other = SkuFactory.create()
    stock_sku(other, 1)

    response = client.post(reverse("web:buy", args=[sku.product_id]), {"sku": other.pk, "quantity": 1})

    assert response.status_code == 400
    assert Order.objects.count() == 0


def test_buy_when_logged_out_sends_to_login_with_product_page_as_next(client: Client) -> None:
    sku = SkuFactory.create()

    response = _buy(client, sku, 1)

    product_url = reverse("web:product", args=[sku.product_id])
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))
    assert response["Location"] == f"{reverse('web:login')}?next={product_url}"
    assert Order.objects.count() == 0


def test_product_off_shelf_or_unknown_is_404(client: Client) -> None:
    sku = SkuFactory.create(product__status="off_shelf")

    off_shelf = client.get(reverse("web:product", args=[sku.product_id]))
    unknown = client.get(reverse("web:product", args=[999999]))

    assert off_shelf.status_code == 404
    assert unknown.status_code == 404
    assert "商品不存在或已下架" in off_shelf.content.decode()


def test_home_catalogue_is_served_from_cache(client: Client, django_assert_num_queries: Any,
                                             settings: Any) -> None:
    # A private in-process cache: the shared test Redis is flushed by other test processes at any moment.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "web-home-test"}}
    sku = SkuFactory.create(product__name="腾讯视频会员")
    stock_sku(sku, 2)
    client.get(reverse("web:home"))

    with django_assert_num_queries(0):
        body = client.get(reverse("web:home")).content.decode()

    assert "腾讯视频会员" in body


def test_home_with_a_malformed_category_shows_everything(client: Client) -> None:
    SkuFactory.create(product__name="网易一卡通")

    response = client.get(reverse("web:home"), {"category": "x' or 1=1 --"})

    assert response.status_code == 200
    assert "网易一卡通" in response.content.decode()


def test_a_sold_out_product_does_not_look_buyable(client: Client) -> None:
    _buyer(client, funds="50.00")
    product = ProductFactory.create(max_quantity=20)
    gone = SkuFactory.create(product=product, name="售完规格", price=Decimal("1.00"))
    available = SkuFactory.create(product=product, name="有货规格", price=Decimal("2.00"))
    stock_sku(available, 1)

    page = client.get(reverse("web:product", args=[product.pk])).content.decode()

    assert re.search(rf'value="{gone.pk}"[^>]*\sdisabled', page)  # a sold-out SKU cannot be chosen
    assert re.search(rf'value="{available.pk}"[^>]*\schecked', page)
    assert 'data-testid="buy-button"' in page
    assert re.search(r'name="quantity"[^>]*max="20"', page)

    CardKey.objects.filter(sku=available).update(status=CardKeyStatus.VOID)
    from django.core.cache import cache
    cache.clear()
    page = client.get(reverse("web:product", args=[product.pk])).content.decode()
    home = client.get(reverse("web:home")).content.decode()

    assert 'data-testid="buy-button"' not in page
    assert 'data-testid="sold-out-button"' in page
    assert 'data-testid="product-sold-out"' in home
