from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from kameng.accounts.models import User
from kameng.catalog.models import Sku
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from tests.factories import SkuFactory, UserFactory, fund_wallet, manual_sku, stock_sku

pytestmark = pytest.mark.django_db


def _logged_in(client: Client, funds: str | None = None) -> User:
    user = UserFactory.create()
    if funds is not None:
        fund_wallet(user, funds)
    client.force_login(user)
    return user


def _pending_order(client: Client, sku: Sku, quantity: int = 2) -> Order:
    response = client.post(reverse("web:buy", args=[sku.product_id]),
                           {"sku": sku.pk, "quantity": quantity, "request_id": "pending-1"})
    order = Order.objects.get()
    assert response["Location"] == reverse("web:order_detail", args=[order.number])
    return order


def _keys_on_page(body: str) -> list[str]:
    return re.findall(r'<code data-testid="card-key">([^<]+)</code>', body)


def test_insufficient_balance_creates_pending_order_then_top_up_and_pay_delivers(client: Client) -> None:
    buyer = _logged_in(client, "5.00")
    sku = SkuFactory.create(price=Decimal("8.00"))
    secrets = stock_sku(sku, 3)

    order = _pending_order(client, sku, quantity=2)

    assert order.status == OrderStatus.PENDING_PAYMENT
    assert CardKey.objects.filter(order=order, status=CardKeyStatus.RESERVED).count() == 2
    assert wallet_balance(user_id=buyer.pk) == Decimal("5.00")
    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    assert "钱包余额 ¥5.00，还差 ¥11.00" in body
    topup_link = f'href="{reverse("web:wallet")}?amount=11.00&amp;order={order.number}"'
    assert topup_link in body  # tops up exactly the shortfall, and remembers the order
    assert 'data-testid="pay-with-wallet"' not in body  # a button that could only fail is not offered
    assert "余额不足，订单已创建" in body
    assert _keys_on_page(body) == []

    fund_wallet(buyer, "20.00")
    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    assert 'data-testid="pay-with-wallet"' in body
    assert "用余额支付（余额 ¥25.00）" in body
    assert 'data-testid="wallet-shortfall"' not in body
    response = client.post(reverse("web:order_pay", args=[order.number]))

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=buyer.pk) == Decimal("9.00")
    page = client.get(response["Location"]).content.decode()
    shown = _keys_on_page(page)
    assert len(set(shown)) == 2  # distinct keys
    assert set(shown) <= set(secrets)
    assert "支付成功，卡密已发放" in page


def test_pay_pending_order_without_enough_balance_is_409_and_changes_nothing(client: Client) -> None:
    buyer = _logged_in(client, "5.00")
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 1)
    order = _pending_order(client, sku, quantity=1)

    response = client.post(reverse("web:order_pay", args=[order.number]))

    assert response.status_code == 409
    assert "余额不足" in response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert wallet_balance(user_id=buyer.pk) == Decimal("5.00")


def test_cancel_pending_order_releases_its_keys(client: Client) -> None:
    _logged_in(client)
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 3)
    order = _pending_order(client, sku, quantity=2)
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 1

    response = client.post(reverse("web:order_cancel", args=[order.number]))

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 3
    assert not CardKey.objects.filter(order=order).exists()
    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    assert "订单已取消，库存已释放" in body
    assert "用余额支付" not in body


def test_cancel_a_delivered_order_is_409(client: Client) -> None:
    buyer = _logged_in(client, "50.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order

    response = client.post(reverse("web:order_cancel", args=[order.number]))

    assert response.status_code == 409
    assert "不能取消" in response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


def test_another_buyer_gets_404_for_the_order_its_keys_and_its_actions() -> None:
    owner = UserFactory.create()
    fund_wallet(owner, "50.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    secrets = stock_sku(sku, 2)
    order = order_checkout(buyer_id=owner.pk, sku_id=sku.pk, quantity=1).order
    stranger = Client()
    stranger.force_login(UserFactory.create())

    detail = stranger.get(reverse("web:order_detail", args=[order.number]))
    txt = stranger.get(reverse("web:order_keys_txt", args=[order.number]))
    status = stranger.get(reverse("web:order_status", args=[order.number]))
    cancel = stranger.post(reverse("web:order_cancel", args=[order.number]))

    assert [detail.status_code, txt.status_code, status.status_code, cancel.status_code] == [404, 404, 404, 404]
    for response in (detail, txt):
        assert not any(secret in response.content.decode() for secret in secrets)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


@pytest.mark.parametrize("path", ["/orders/%00/", "/orders/K%00/status/", "/orders/K%00/keys.txt",
                                  "/orders/K%00/pay/P1/", "/orders/%E2%80%A8/"])
def test_an_order_number_of_the_wrong_shape_is_404(client: Client, path: str) -> None:
    _logged_in(client)

    response = client.get(path)

    assert response.status_code == 404
    assert "订单不存在" in response.content.decode()


def test_order_pages_need_login(client: Client) -> None:
    response = client.get(reverse("web:order_detail", args=["K000"]))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))


def test_txt_of_an_undelivered_order_is_refused(client: Client) -> None:
    _logged_in(client)
    sku = SkuFactory.create()
    stock_sku(sku, 1)
    order = _pending_order(client, sku, quantity=1)

    response = client.get(reverse("web:order_keys_txt", args=[order.number]))

    assert response.status_code == 409
    assert "Content-Disposition" not in response
    assert "订单尚未发货" in response.content.decode()

    client.post(reverse("web:order_cancel", args=[order.number]))
    cancelled = client.get(reverse("web:order_keys_txt", args=[order.number]))

    assert cancelled.status_code == 409
    assert "订单当前状态为「已取消」，没有可下载的卡密" in cancelled.content.decode()  # not "not delivered yet"


def test_timeline_lists_every_event(client: Client) -> None:
    buyer = _logged_in(client, "50.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order

    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()

    timeline = body.split('data-testid="order-timeline"')[1].split("</ol>")[0]
    assert re.findall(r"<span>([^<]+)</span>", timeline) == [
        "订单已创建，等待支付", "已使用钱包余额支付", "已发货，卡密已到账"]


def test_pending_order_status_polls_and_asks_for_refresh_once_paid(client: Client) -> None:
    buyer = _logged_in(client)
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 1)
    order = _pending_order(client, sku, quantity=1)
    status_url = reverse("web:order_status", args=[order.number])

    page = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    assert f'hx-get="{status_url}?was=pending_payment&amp;seen=' in page
    assert 'hx-trigger="every 3s"' in page
    unchanged = client.get(status_url, {"was": "pending_payment"}, headers={"HX-Request": "true"})
    assert unchanged.status_code == 200
    assert "HX-Refresh" not in unchanged

    fund_wallet(buyer, "8.00")
    client.post(reverse("web:order_pay", args=[order.number]))
    moved = client.get(status_url, {"was": "pending_payment"}, headers={"HX-Request": "true"})

    assert moved["HX-Refresh"] == "true"
    delivered_page = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    assert "hx-trigger" not in delivered_page


def test_my_orders_lists_only_mine_and_paginates(client: Client) -> None:
    buyer = _logged_in(client, "1000.00")
    sku = SkuFactory.create(price=Decimal("1.00"))
    stock_sku(sku, 25)
    numbers = [order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order.number for _ in range(23)]
    other = UserFactory.create()
    fund_wallet(other, "10.00")
    foreign = order_checkout(buyer_id=other.pk, sku_id=sku.pk, quantity=1).order.number

    first = client.get(reverse("web:order_list")).content.decode()
    second = client.get(reverse("web:order_list"), {"page": 2}).content.decode()

    assert first.count('data-testid="order-link"') == 20
    assert second.count('data-testid="order-link"') == 3
    assert numbers[-1] in first  # newest first
    assert numbers[0] in second
    assert foreign not in first + second


def _status_badge(client: Client, order: Order) -> tuple[str, str]:
    """The status badge as the order page shows it and as its polling answers."""
    page = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    polled = client.get(reverse("web:order_status", args=[order.number]), {"was": order.status},
                        headers={"HX-Request": "true"}).content.decode()
    return page.split('<span id="order-status"')[1].split(">")[0], polled


def test_an_order_waiting_for_staff_polls_every_30_seconds(client: Client) -> None:
    buyer = _logged_in(client, "58.00")
    order = order_checkout(buyer_id=buyer.pk, sku_id=manual_sku("58.00").pk, quantity=1).order
    assert order.status == OrderStatus.PAID

    badge, polled = _status_badge(client, order)

    assert 'hx-trigger="every 30s"' in badge
    assert 'hx-trigger="every 30s"' in polled
    assert "已支付，等待人工发货" in polled


def test_a_card_key_order_being_delivered_keeps_polling_every_3_seconds(client: Client) -> None:
    buyer = _logged_in(client, "8.00")
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.FULFILLING)
    order.refresh_from_db()

    badge, polled = _status_badge(client, order)

    assert 'hx-trigger="every 3s"' in badge
    assert 'hx-trigger="every 3s"' in polled
