"""A direct top-up order's page follows the top-up in a real browser without a reload: the steps move as the
supplier pipeline writes them, the operator's serial number appears, and the finished order stops asking."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from pytest_django.live_server_helper import LiveServer

from kameng.orders import fulfilment
from kameng.orders.events import fact
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.services import order_checkout
from kameng.web.views import orders as order_views
from tests.e2e.support import log_in
from tests.factories import UserFactory, fund_wallet
from tests.topup_support import phone_topup_sku

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _step(order: Order, kind: OrderEventKind, to_status: str, **params: str) -> None:
    said = fact(kind, **params)
    from_status = order.status
    Order.objects.filter(pk=order.pk).update(status=to_status)
    order.status = to_status
    OrderEvent.objects.create(order=order, from_status=from_status, to_status=to_status, kind=said.kind,
                              params=said.params)


def _states(page: Page) -> list[str]:
    return [page.get_attribute(f"[data-testid=topup-step] >> nth={index}", "data-state") or "" for index in range(4)]


def test_the_steps_move_without_a_reload(page: Page, live_server: LiveServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_views, "TOPUP_POLL_SECONDS", 1)  # the server runs in this process
    # Nothing fulfils it here: the steps are written by the test, as the supplier pipeline would write them.
    monkeypatch.setattr(fulfilment, "order_fulfilment_enqueue", lambda *, order_id: None)
    buyer = UserFactory.create(username="browser_topup")
    fund_wallet(buyer, "49.50")
    sku = phone_topup_sku("49.50")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, topup_target={"phone": "13812341234"}).order
    assert order.status == OrderStatus.PAID
    base = live_server.url
    log_in(page, base, "browser_topup")
    page.goto(f"{base}/orders/{order.number}/")
    page.evaluate("window.notReloaded = true")
    assert "138****1234" in page.inner_text("[data-testid=topup-target-phone]")
    assert _states(page) == ["done", "current", "todo", "todo"]

    _step(order, OrderEventKind.TOPUP_PROCESSING, OrderStatus.FULFILLING)
    page.wait_for_selector("[data-testid=topup-step][data-state=current] >> text=充值中", timeout=15_000)
    assert _states(page) == ["done", "done", "current", "todo"]
    assert page.get_attribute("[data-testid=order-status]", "data-status") == "fulfilling"

    _step(order, OrderEventKind.TOPUP_SUCCEEDED, OrderStatus.DELIVERED, operator_serial="SN-E2E-0001")
    page.wait_for_selector("[data-testid=operator-serial]", timeout=15_000)
    assert page.inner_text("[data-testid=operator-serial]") == "SN-E2E-0001"
    assert _states(page) == ["done", "done", "done", "done"]
    assert "SN-E2E-0001" in page.inner_text("[data-testid=order-timeline]")
    assert page.evaluate("window.notReloaded") is True  # swapped in place, never reloaded
    assert page.get_attribute("[data-testid=topup-progress]", "hx-get") is None
