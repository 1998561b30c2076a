"""The product page of a direct top-up (直充): its form rendered from the product's template, a refused value said
next to its field with everything typed kept, and a good one buying (no JavaScript needed anywhere)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django import DjangoCaptureOnCommitCallbacks

from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from tests.factories import UserFactory, fund_wallet
from tests.topup_support import game_topup_sku, phone_topup_sku

pytestmark = pytest.mark.django_db


def _field(page: str, name: str) -> str:
    found = re.search(rf'<(input|select)[^>]*name="topup_{name}"[^>]*>', page)
    assert found, f"no field topup_{name}"
    return found.group(0)


def _errors(page: str) -> list[str]:
    return re.findall(r'<small class="field-error" data-testid="topup-error">([^<]*)</small>', page)


def test_the_page_renders_the_form_of_the_product(client: Client) -> None:
    sku = game_topup_sku()
    page = client.get(reverse("web:product", args=[sku.product_id])).content.decode()

    assert 'data-testid="topup-fields"' in page
    account = _field(page, "account")
    assert 'maxlength="20"' in account
    assert "required" in account
    region = _field(page, "region")
    assert region.startswith("<select")
    assert '<option value="QQ区">QQ区</option>' in page
    assert "required" not in _field(page, "role")
    assert page.count('<span class="required" aria-hidden="true">*</span>') == 2
    assert "直充" in page  # on demand, never "已售罄" for want of card keys
    assert 'data-testid="sold-out-button"' not in page


def test_a_phone_field_asks_for_digits(client: Client) -> None:
    sku = phone_topup_sku()
    page = client.get(reverse("web:product", args=[sku.product_id])).content.decode()
    phone = _field(page, "phone")
    assert 'inputmode="numeric"' in phone
    assert 'autocomplete="tel"' in phone


def test_a_product_without_a_template_asks_for_the_account(client: Client) -> None:
    sku = phone_topup_sku(form=[])
    page = client.get(reverse("web:product", args=[sku.product_id])).content.decode()
    assert "充值账号" in page
    assert 'name="topup_account"' in page


def test_a_refused_number_is_said_next_to_the_field_and_the_typing_kept(client: Client) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    client.force_login(buyer)
    sku = phone_topup_sku("49.50")

    response = client.post(reverse("web:buy", args=[sku.product_id]),
                           {"sku": sku.pk, "quantity": 1, "request_id": "req-1", "topup_phone": "130 1234 5678"})

    page = response.content.decode()
    assert response.status_code == 400
    assert _errors(page) == ["该商品仅支持中国移动号码，您输入的是中国联通号码"]
    assert 'value="130 1234 5678"' in _field(page, "phone")
    assert 'data-code="topup_carrier_mismatch"' in page
    assert Order.objects.count() == 0
    assert wallet_balance(user_id=buyer.pk) == Decimal("100.00")


def test_a_missing_select_is_said_and_the_other_values_kept(client: Client) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    client.force_login(buyer)
    sku = game_topup_sku()

    response = client.post(reverse("web:buy", args=[sku.product_id]),
                           {"sku": sku.pk, "quantity": 1, "request_id": "req-1", "topup_account": "player_2024",
                            "topup_region": "", "topup_role": "法师"})

    page = response.content.decode()
    assert response.status_code == 400
    assert _errors(page) == ["请选择大区"]
    assert 'value="player_2024"' in _field(page, "account")
    assert 'value="法师"' in _field(page, "role")
    assert Order.objects.count() == 0


def test_a_quantity_refused_keeps_the_topup_values(client: Client) -> None:
    buyer = UserFactory.create()
    client.force_login(buyer)
    sku = phone_topup_sku()
    response = client.post(reverse("web:buy", args=[sku.product_id]),
                           {"sku": sku.pk, "quantity": "0", "request_id": "req-1", "topup_phone": "13800138000"})
    assert response.status_code == 400
    assert 'value="13800138000"' in _field(response.content.decode(), "phone")


def test_a_good_number_buys_the_topup(client: Client,
                                      django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    client.force_login(buyer)
    sku = phone_topup_sku("49.50")

    with django_capture_on_commit_callbacks(execute=False):  # fulfilment is the suppliers' part
        response = client.post(reverse("web:buy", args=[sku.product_id]),
                               {"sku": sku.pk, "quantity": 1, "request_id": "req-1",
                                "topup_phone": "+86 138-0013-8000"})

    order = Order.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("web:order_detail", args=[order.number])
    assert order.status == OrderStatus.PAID
    assert order.topup_target == '{"phone":"13800138000"}'
    assert wallet_balance(user_id=buyer.pk) == Decimal("50.50")
    page = client.get(response["Location"]).content.decode()
    assert "支付成功，正在为您充值，可在订单页查看进度" in page
    assert "卡密已发放" not in page
