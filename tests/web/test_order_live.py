"""The order page's status poll (web:order_status): it answers a refresh of the whole page when the order moved on
— a new status or a new line on its timeline — and when the visitor can no longer see the order, instead of
swapping a login page or an error into the badge."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from kameng.orders.events import fact
from kameng.orders.models import Order, OrderEventKind
from kameng.orders.refunds import order_note
from kameng.orders.services import order_checkout
from tests.factories import SkuFactory, UserFactory, stock_sku

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def _pending_order(client: Client) -> Order:
    buyer = UserFactory.create()
    client.force_login(buyer)
    sku = SkuFactory.create(price=Decimal("6.00"))
    stock_sku(sku, 1)
    return order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order


def _poll_url(client: Client, order: Order) -> str:
    page = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    found = re.search(r'hx-get="([^"]+)"', page)
    assert found is not None
    return found.group(1).replace("&amp;", "&")


def test_a_new_timeline_line_without_a_new_status_refreshes_the_page(client: Client) -> None:
    order = _pending_order(client)
    poll = _poll_url(client, order)
    assert "was=pending_payment&seen=" in poll

    unchanged = client.get(poll, headers=HTMX)
    order_note(order_id=order.pk, said=fact(OrderEventKind.NOTE, text="预留的卡密已让给已付款的买家"))
    noted = client.get(poll, headers=HTMX)

    assert (unchanged.status_code, "HX-Refresh" in unchanged) == (200, False)
    assert 'data-testid="order-status"' in unchanged.content.decode()
    assert noted["HX-Refresh"] == "true"
    assert client.get(_poll_url(client, order), headers=HTMX).get("HX-Refresh") is None  # the new page polls on


def test_a_poll_after_logging_out_refreshes_the_page_instead_of_showing_the_login_form(client: Client) -> None:
    order = _pending_order(client)
    poll = _poll_url(client, order)
    client.logout()

    polled = client.get(poll, headers=HTMX)
    opened = client.get(poll)

    assert (polled.status_code, polled["HX-Refresh"], polled.content) == (200, "true", b"")
    assert opened.status_code == 302
    assert opened["Location"].startswith(reverse("web:login"))


def test_a_poll_for_an_order_of_another_account_refreshes_the_page_or_is_a_404(client: Client) -> None:
    order = _pending_order(client)
    poll = _poll_url(client, order)
    client.force_login(UserFactory.create())  # another account in another tab

    polled = client.get(poll, headers=HTMX)
    opened = client.get(poll)

    assert (polled.status_code, polled["HX-Refresh"]) == (200, "true")
    assert order.number not in polled.content.decode()
    assert opened.status_code == 404
