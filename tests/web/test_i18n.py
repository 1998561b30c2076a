from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from kameng.orders.services import order_checkout
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db


def _switch(client: Client, language: str, next_url: str = "/") -> None:
    response = client.post(reverse("set_language"), {"language": language, "next": next_url})
    assert response.status_code == 302
    assert response["Location"] == next_url


def test_storefront_speaks_chinese_by_default(client: Client) -> None:
    body = client.get(reverse("web:home")).content.decode()

    assert '<html lang="zh-hans">' in body
    assert "首页" in body
    assert 'data-testid="lang-en"' in body


def test_language_switch_shows_english_text(client: Client) -> None:
    sku = SkuFactory.create(product__name="王者荣耀点券", price=Decimal("5.80"))
    stock_sku(sku, 3)

    _switch(client, "en")
    body = client.get(reverse("web:home")).content.decode()

    assert '<html lang="en">' in body
    assert "Home" in body
    assert "首页" not in body
    assert "Log in" in body
    assert "Sign up" in body
    assert "3 in stock" in body
    assert "王者荣耀点券" in body  # catalogue data is not translated
    assert 'data-testid="lang-zh"' in body

    _switch(client, "zh-hans")
    assert "首页" in client.get(reverse("web:home")).content.decode()


def test_order_page_status_and_timeline_are_translated(client: Client) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "20.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order
    client.force_login(buyer)

    _switch(client, "en")
    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()

    assert "Delivered" in body
    assert "Paid from wallet balance" in body
    assert "Download TXT" in body
    assert "已发货" not in body


def test_service_errors_are_translated(client: Client) -> None:
    client.force_login(UserFactory.create())
    sku = SkuFactory.create()

    _switch(client, "en")
    response = client.post(reverse("web:buy", args=[sku.product_id]), {"sku": sku.pk, "quantity": 1})

    assert response.status_code == 409
    assert "Sold out" in response.content.decode()


def test_an_english_browser_still_gets_chinese_until_it_chooses(client: Client) -> None:
    body = client.get(reverse("web:home"), headers={"Accept-Language": "en-US,en;q=0.9"}).content.decode()

    assert '<html lang="zh-hans">' in body
    assert "首页" in body


def test_an_unknown_language_cookie_falls_back_to_chinese(client: Client) -> None:
    client.cookies["django_language"] = "xx"

    body = client.get(reverse("web:home")).content.decode()

    assert "首页" in body


def test_errors_with_values_in_them_are_translated_and_filled_in(client: Client) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    client.force_login(buyer)
    sku = SkuFactory.create(price=Decimal("1.00"), product__max_quantity=20)
    stock_sku(sku, 3)
    buy = reverse("web:buy", args=[sku.product_id])

    _switch(client, "en")
    too_many = client.post(buy, {"sku": sku.pk, "quantity": 21})
    short = client.post(buy, {"sku": sku.pk, "quantity": 5})

    assert too_many.status_code == 400
    assert "Quantity must be between 1 and 20" in too_many.content.decode()
    assert short.status_code == 409
    assert "Not enough stock: only 3 left" in short.content.decode()

    _switch(client, "zh-hans")
    assert "库存不足，仅剩 3 件" in client.post(buy, {"sku": sku.pk, "quantity": 5}).content.decode()


def test_a_status_inside_an_error_is_translated_too(client: Client) -> None:
    from django.utils import translation

    from kameng.core.errors import ConflictError
    from kameng.web.errors import message_for

    error = ConflictError("订单当前状态为「%(status)s」，不能取消", params={"status": "已取消"})

    assert error.message == "订单当前状态为「已取消」，不能取消"
    with translation.override("en"):
        assert message_for(error) == "This order is “Cancelled” and can no longer be cancelled"


def test_topup_amount_limits_are_translated(client: Client) -> None:
    from kameng.payments.models import ChannelKind, PaymentChannel

    client.force_login(UserFactory.create())
    PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                  gateway_url="https://pay.example.com/", merchant_id="1001", merchant_key="k" * 32)

    _switch(client, "en")
    response = client.post(reverse("web:topup"), {"channel": "epay", "amount": "0.5"})

    assert response.status_code == 400
    assert "The amount must be at least ¥1.00" in response.content.decode()


def test_switching_language_on_a_refused_form_returns_to_a_page_that_exists(client: Client) -> None:
    client.force_login(UserFactory.create())
    sku = SkuFactory.create(price=Decimal("1.00"), product__max_quantity=20)
    stock_sku(sku, 3)

    refused = client.post(reverse("web:buy", args=[sku.product_id]), {"sku": sku.pk, "quantity": 21})
    product_url = reverse("web:product", args=[sku.product_id])
    assert f'name="next" value="{product_url}"' in refused.content.decode()

    refused_topup = client.post(reverse("web:topup"), {"channel": "nope", "amount": "x"})
    assert f'name="next" value="{reverse("web:wallet")}"' in refused_topup.content.decode()


@pytest.mark.parametrize(("name", "destination"), [("web:topup", "web:wallet"), ("web:logout", "web:home")])
def test_a_get_on_a_post_only_address_goes_somewhere_useful(client: Client, name: str, destination: str) -> None:
    user = UserFactory.create()
    client.force_login(user)

    response = client.get(reverse(name))

    assert response.status_code == 302
    assert response["Location"] == reverse(destination)
    assert client.session.get("_auth_user_id") == str(user.pk)  # a GET never logs anyone out


def test_a_get_on_the_buy_address_goes_to_the_product(client: Client) -> None:
    sku = SkuFactory.create()

    response = client.get(reverse("web:buy", args=[sku.product_id]))

    assert response.status_code == 302
    assert response["Location"] == reverse("web:product", args=[sku.product_id])
def test_every_domain_text_has_an_english_translation() -> None:
    from django.utils import translation

    from kameng.web.i18n_catalog import DOMAIN_TEXTS

    with translation.override("en"):
        untranslated = [text for text in DOMAIN_TEXTS if translation.gettext(text) == text]

    assert untranslated == []


def test_an_order_total_over_the_limit_is_a_translated_form_error(client: Client) -> None:
    client.force_login(UserFactory.create())
    sku = SkuFactory.create(price=Decimal("9999999999.99"), product__max_quantity=500)
    stock_sku(sku, 101)

    _switch(client, "en")
    response = client.post(reverse("web:buy", args=[sku.product_id]), {"sku": sku.pk, "quantity": 101})

    assert response.status_code == 400
    assert "An order may total at most ¥999999999999.99: at most 100 of this item per order" in (
        response.content.decode())
