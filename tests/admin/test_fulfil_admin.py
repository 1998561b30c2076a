"""Staff fulfil manual orders from the back office: the button shows only on orders waiting for them, the form
delivers with a note the buyer then reads, or fails the order (money back), and only staff allowed may do it."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from kameng.accounts.models import User
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from tests.factories import SkuFactory, UserFactory, fund_wallet, manual_sku, stock_sku

pytestmark = pytest.mark.django_db


def _manual_order(capture: Callable[..., Any]) -> Order:
    buyer = UserFactory.create()
    fund_wallet(buyer, "58.00")
    sku = manual_sku()
    with capture(execute=True):
        order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLING
    return order


def _fulfil_url(order: Order) -> str:
    return reverse("admin:orders_order_fulfil", args=[order.pk])


def test_staff_deliver_a_manual_order_and_the_buyer_reads_the_note(
        admin_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    order = _manual_order(django_capture_on_commit_callbacks)
    change = admin_client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert _fulfil_url(order) in change

    response = admin_client.post(_fulfil_url(order), {"outcome": "delivered", "note": "已充值到账号 A-778"})

    assert response.status_code == 302
    order.refresh_from_db()
    assert (order.status, order.delivery_note) == (OrderStatus.DELIVERED, "已充值到账号 A-778")
    buyer = Client()
    buyer.force_login(order.buyer)
    page = buyer.get(reverse("web:order_detail", args=[order.number])).content.decode()
    assert "已充值到账号 A-778" in page


def test_staff_fail_a_manual_order_and_the_wallet_is_refunded(
        admin_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    order = _manual_order(django_capture_on_commit_callbacks)

    response = admin_client.post(_fulfil_url(order), {"outcome": "failed", "note": "账号不存在"})
    again = admin_client.post(_fulfil_url(order), {"outcome": "failed", "note": "账号不存在"})

    assert (response.status_code, again.status_code) == (302, 302)
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert wallet_balance(user_id=order.buyer_id) == Decimal("58.00")


def test_a_note_is_required(admin_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    order = _manual_order(django_capture_on_commit_callbacks)

    response = admin_client.post(_fulfil_url(order), {"outcome": "delivered", "note": ""})

    assert response.status_code == 200
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FULFILLING


def test_staff_without_the_permission_cannot_fulfil(django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    order = _manual_order(django_capture_on_commit_callbacks)
    viewer = UserFactory.create(is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_order"))
    client = Client()
    client.force_login(User.objects.get(pk=viewer.pk))

    response = client.post(_fulfil_url(order), {"outcome": "delivered", "note": "x"})

    assert response.status_code == 403
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FULFILLING


def test_no_fulfil_button_on_a_card_key_order(admin_client: Client) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "10.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order

    change = admin_client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    response = admin_client.post(_fulfil_url(order), {"outcome": "delivered", "note": "x"})

    assert _fulfil_url(order) not in change
    assert response.status_code == 302
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED


def test_the_buyer_sees_a_manual_order_waiting_for_staff(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    order = _manual_order(django_capture_on_commit_callbacks)
    buyer = Client()
    buyer.force_login(order.buyer)

    page = buyer.get(reverse("web:order_detail", args=[order.number])).content.decode()
    badge = buyer.get(reverse("web:order_status", args=[order.number])).content.decode()
    listing = buyer.get(reverse("web:order_list")).content.decode()

    assert 'data-testid="order-status" data-status="fulfilling"' in page
    assert ">已支付，等待人工发货</span>" in page
    assert ">已支付，等待人工发货</span>" in badge
    assert 'data-testid="order-list-status">已支付，等待人工发货</span>' in listing
    assert ">发货中</span>" not in page + listing


def test_a_card_key_order_badge_says_its_own_status() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("9.80"))
    stock_sku(sku, 1)
    fund_wallet(buyer, "9.80")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order
    client = Client()
    client.force_login(buyer)

    page = client.get(reverse("web:order_detail", args=[order.number])).content.decode()

    assert ">已发货</span>" in page
    assert "等待人工发货" not in page
