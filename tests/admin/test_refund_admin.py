"""Refunding an order from the back office: the form, the service it calls, what staff see afterwards, who may do
it; the refund list with its retry; and the risk events page."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kameng.accounts.models import User
from kameng.ledger.models import Journal
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from kameng.payments.gateways.base import GatewayError, RefundResult
from kameng.payments.gateways.base import RefundStatus as GatewayRefundStatus
from kameng.payments.models import (
    Refund,
    RefundDestination,
    RefundStatus,
)
from kameng.payments.refunds import order_refund
from kameng.risk.models import RiskEvent
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.payments.refund_support import FakeRefundGateway, order_paid_by_channel

pytestmark = pytest.mark.django_db




def _refund_url(order: Order) -> str:
    return reverse("admin:orders_order_refund", args=[order.pk])


def _post_refund(client: Client, order: Order, data: dict[str, str], **kwargs: Any) -> Any:
    """Post the refund form as the page renders it: with a fresh request id."""
    return client.post(_refund_url(order), {"request_id": uuid.uuid4().hex, **data}, **kwargs)


def _order_paid_from_wallet(price: str = "10.00", quantity: int = 3) -> Order:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal(price))
    stock_sku(sku, quantity)
    fund_wallet(buyer, Decimal(price) * quantity)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=quantity).order
    assert order.status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    return order


def _staff(*codenames: str) -> User:
    user = UserFactory.create(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # a fresh instance: permissions are cached per instance


def _page(response: Any) -> str:
    return str(response.content.decode())


def test_order_page_has_refund_button_and_shows_payments_and_refunds(admin_client: Client) -> None:
    order, payment = order_paid_by_channel()
    wallet_order = _order_paid_from_wallet()
    _post_refund(admin_client, wallet_order, {"amount": "5.00", "destination": "wallet", "reason": "少发"})
    refund = Refund.objects.get()

    page = _page(admin_client.get(reverse("admin:orders_order_change", args=[order.pk])))
    assert _refund_url(order) in page
    assert payment.number in page
    assert "测试易支付" in page

    page = _page(admin_client.get(reverse("admin:orders_order_change", args=[wallet_order.pk])))
    assert refund.number in page
    assert "少发" in page
    assert 'name="_save"' not in page


def test_no_refund_button_on_an_unpaid_order(admin_client: Client) -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create()
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order

    page = _page(admin_client.get(reverse("admin:orders_order_change", args=[order.pk])))
    assert _refund_url(order) not in page
    response = admin_client.get(_refund_url(order), follow=True)
    assert "订单状态为「待支付」，不能退款" in _page(response)
    assert Refund.objects.count() == 0


def test_full_refund_to_the_wallet_of_a_wallet_paid_order(admin_client: Client) -> None:
    order = _order_paid_from_wallet("12.50", 2)
    form_page = admin_client.get(_refund_url(order))
    assert form_page.status_code == 200
    assert form_page.context["form"]["amount"].value() == Decimal("25.00")
    assert "买家可用余额再次下单" in _page(form_page)
    # Buyers have no withdrawal to be promised (the menu's 供货商提现 and 代理佣金提现 are the suppliers' and the
    # resellers' own, not the buyer's).
    assert "提现" not in _page(form_page).replace("供货商提现", "").replace("代理佣金提现", "")

    response = _post_refund(admin_client, order, {"amount": "25.00", "destination": "wallet",
                                                  "reason": "卡密无效"}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin:orders_order_change", args=[order.pk])
    refund = Refund.objects.get()
    assert f"已退款 ¥25.00 到买家钱包余额（退款单 {refund.number}）" in _page(response)
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == (OrderStatus.REFUNDED, Decimal("25.00"))
    assert wallet_balance(user_id=order.buyer_id) == Decimal("25.00")
    assert (refund.status, refund.destination, refund.amount) == (RefundStatus.SUCCEEDED, "wallet", Decimal("25.00"))
    assert refund.created_by == User.objects.get(username="admin")
    assert order.events.latest("id").message == "已退款 ¥25.00 到钱包余额（卡密无效）"
    assert _refund_url(order) not in _page(admin_client.get(reverse("admin:orders_order_change", args=[order.pk])))


def test_partial_refunds_then_an_over_refund_is_refused_and_changes_nothing(admin_client: Client) -> None:
    order = _order_paid_from_wallet("10.00", 3)
    for amount in ("10.00", "5.00"):
        response = _post_refund(admin_client, order, {"amount": amount, "destination": "wallet",
                                                      "reason": "部分退款"})
        assert response.status_code == 302
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == (OrderStatus.PARTIALLY_REFUNDED, Decimal("15.00"))
    assert admin_client.get(_refund_url(order)).context["form"]["amount"].value() == Decimal("15.00")
    journals = Journal.objects.count()

    response = _post_refund(admin_client, order, {"amount": "15.01", "destination": "wallet", "reason": "多退"})

    assert response.status_code == 200
    assert "退款金额超过可退金额 ¥15.00" in _page(response)
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == (OrderStatus.PARTIALLY_REFUNDED, Decimal("15.00"))
    assert wallet_balance(user_id=order.buyer_id) == Decimal("15.00")
    assert Refund.objects.count() == 2
    assert Journal.objects.count() == journals


def test_original_channel_is_not_offered_for_a_wallet_paid_order(admin_client: Client) -> None:
    order = _order_paid_from_wallet()

    page = _page(admin_client.get(_refund_url(order)))
    assert 'value="wallet"' in page
    assert 'value="original"' not in page
    assert "原路退回（" not in page

    response = _post_refund(admin_client, order, {"amount": "1.00", "destination": "original", "reason": "x"})
    assert response.status_code == 200
    assert response.context["form"].errors["destination"]
    assert Refund.objects.count() == 0
    order.refresh_from_db()
    assert order.refunded_amount == Decimal("0.00")


def test_original_refund_of_a_gateway_paid_order(admin_client: Client, refund_gateway: FakeRefundGateway) -> None:
    order, payment = order_paid_by_channel("30.00")
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.SUCCEEDED, gateway_refund_no="RF1"))
    assert "原路退回（测试易支付" in _page(admin_client.get(_refund_url(order)))

    response = _post_refund(admin_client, order, {"amount": "30.00", "destination": "original",
                                                  "reason": "用户取消"}, follow=True)

    refund = Refund.objects.get()
    assert f"¥30.00 已原路退回（退款单 {refund.number}）" in _page(response)
    assert (refund.status, refund.gateway_refund_no, refund.payment_id) == (RefundStatus.SUCCEEDED, "RF1",
                                                                            payment.pk)
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.refunded_amount == Decimal("30.00")
    assert (order.status, order.refunded_amount) == (OrderStatus.REFUNDED, Decimal("30.00"))
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")  # the money left through the channel
    assert [call["refund_no"] for call in refund_gateway.calls] == [refund.number]


def test_refused_original_refund_says_why_and_the_money_stays_in_the_wallet(
        admin_client: Client, refund_gateway: FakeRefundGateway) -> None:
    order, _ = order_paid_by_channel("30.00")
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.FAILED, message="交易已超过退款期限"))

    response = _post_refund(admin_client, order, {"amount": "20.00", "destination": "original",
                                                  "reason": "售后"}, follow=True)

    assert "通道拒绝原路退款：交易已超过退款期限；¥20.00 已留在买家钱包余额" in _page(response)
    assert Refund.objects.get().status == RefundStatus.FAILED
    assert wallet_balance(user_id=order.buyer_id) == Decimal("20.00")


def _answer_long_lost(refund: Refund) -> None:
    past = timezone.now() - timedelta(minutes=5)
    Refund.objects.filter(pk=refund.pk).update(created_at=past, last_sent_at=past)


def test_unreachable_gateway_leaves_the_refund_pending_and_retry_asks_the_gateway(
        admin_client: Client, refund_gateway: FakeRefundGateway) -> None:
    order, payment = order_paid_by_channel("30.00")
    refund_gateway.has_refund_query = True
    refund_gateway.answers.append(GatewayError("连接超时"))

    response = _post_refund(admin_client, order, {"amount": "30.00", "destination": "original",
                                                  "reason": "取消"}, follow=True)

    refund = Refund.objects.get()
    page = _page(response)
    assert "原路退款处理中（结果未知：连接超时）" in page
    assert "结果确认前不会重复退款" in page
    assert refund.status == RefundStatus.PENDING
    changelist = reverse("admin:payments_refund_changelist")
    assert refund.number in _page(admin_client.get(changelist))
    assert admin_client.get(reverse("admin:payments_refund_change", args=[refund.pk])).status_code == 200

    _answer_long_lost(refund)
    refund_gateway.query_answers.append(RefundResult(status=GatewayRefundStatus.SUCCEEDED, gateway_refund_no="RF9"))
    response = admin_client.post(changelist, {"action": "retry_original_refunds", "_selected_action": [refund.pk]},
                                 follow=True)

    assert f"{refund.number}：已原路退款 ¥30.00" in _page(response)
    refund.refresh_from_db()
    assert (refund.status, refund.gateway_refund_no) == (RefundStatus.SUCCEEDED, "RF9")
    assert [call["refund_no"] for call in refund_gateway.calls] == [refund.number]  # asked, not sent again
    assert [query["refund_no"] for query in refund_gateway.queries] == [refund.number]
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("30.00")


def test_v1_refund_with_a_lost_answer_goes_to_review_and_staff_settle_it(
        admin_client: Client, refund_gateway: FakeRefundGateway) -> None:
    order, payment = order_paid_by_channel("30.00")  # epay V1: no refund query
    refund_gateway.answers.append(GatewayError("连接超时"))
    _post_refund(admin_client, order, {"amount": "30.00", "destination": "original", "reason": "取消"})
    refund = Refund.objects.get()
    _answer_long_lost(refund)
    changelist = reverse("admin:payments_refund_changelist")

    response = admin_client.post(changelist, {"action": "retry_original_refunds", "_selected_action": [refund.pk]},
                                 follow=True)

    assert f"{refund.number}：已转人工核实" in _page(response)
    assert len(refund_gateway.calls) == 1  # never sent again
    refund.refresh_from_db()
    assert refund.status == RefundStatus.REVIEW
    page = _page(admin_client.get(changelist + "?status__exact=review"))
    assert refund.number in page
    assert "待人工核实" in page
    assert "该通道协议无退款查询" in _page(admin_client.get(reverse("admin:payments_refund_change",
                                                                 args=[refund.pk])))
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")

    response = admin_client.post(changelist, {"action": "settle_not_refunded_by_gateway",
                                              "_selected_action": [refund.pk]}, follow=True)

    assert f"{refund.number}：已确认通道未退款，¥30.00 已退回买家钱包" in _page(response)
    refund.refresh_from_db()
    assert refund.status == RefundStatus.FAILED
    assert refund.failure_reason.startswith("人工核实：通道未退款")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("30.00")
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("0.00")
    assert LogEntry.objects.filter(object_id=str(refund.pk)).count() == 1

    response = admin_client.post(changelist, {"action": "settle_refunded_by_gateway",
                                              "_selected_action": [refund.pk]}, follow=True)
    assert "1 笔不是待人工核实的退款，已跳过" in _page(response)
    assert wallet_balance(user_id=order.buyer_id) == Decimal("30.00")


def test_staff_without_the_refund_permission_cannot_settle_a_review(
        client: Client, refund_gateway: FakeRefundGateway) -> None:
    order, _ = order_paid_by_channel("30.00")
    refund_gateway.answers.append(GatewayError("连接超时"))
    order_refund(order_id=order.pk, amount=Decimal("30.00"), destination=RefundDestination.ORIGINAL)
    refund = Refund.objects.get()
    Refund.objects.filter(pk=refund.pk).update(status=RefundStatus.REVIEW)
    client.force_login(_staff("view_refund"))

    response = client.post(reverse("admin:payments_refund_changelist"),
                           {"action": "settle_refunded_by_gateway", "_selected_action": [refund.pk]})

    # The action is not offered to them: the changelist comes back as it was, without an action menu.
    assert response.status_code == 200
    assert not response.has_header("Location")
    assert 'name="action"' not in _page(response)
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.REVIEW


def test_retry_skips_refunds_that_are_not_pending(admin_client: Client, refund_gateway: FakeRefundGateway) -> None:
    order = _order_paid_from_wallet()
    _post_refund(admin_client, order, {"amount": "5.00", "destination": "wallet", "reason": "x"})
    refund = Refund.objects.get()

    response = admin_client.post(reverse("admin:payments_refund_changelist"),
                                 {"action": "retry_original_refunds", "_selected_action": [refund.pk]}, follow=True)

    assert "1 笔不是处理中的原路退款，已跳过" in _page(response)
    assert refund_gateway.calls == []


def test_refund_admin_is_read_only(admin_client: Client) -> None:
    assert admin_client.get(reverse("admin:payments_refund_add")).status_code == 403


def test_changelist_action_opens_the_refund_form_for_exactly_one_order(admin_client: Client) -> None:
    first, second = _order_paid_from_wallet(), _order_paid_from_wallet()
    changelist = reverse("admin:orders_order_changelist")

    response = admin_client.post(changelist, {"action": "refund_selected", "_selected_action": [first.pk]})
    assert response.status_code == 302
    assert response["Location"] == _refund_url(first)

    response = admin_client.post(changelist, {"action": "refund_selected",
                                              "_selected_action": [first.pk, second.pk]}, follow=True)
    assert "退款一次只能处理一个订单，请只选择一个" in _page(response)
    assert Refund.objects.count() == 0


def test_staff_without_the_refund_permission_get_403(client: Client) -> None:
    order = _order_paid_from_wallet()
    client.force_login(_staff("view_order", "view_refund"))

    page = _page(client.get(reverse("admin:orders_order_change", args=[order.pk])))
    assert _refund_url(order) not in page
    assert client.get(_refund_url(order)).status_code == 403
    response = _post_refund(client, order, {"amount": "30.00", "destination": "wallet", "reason": "x"})
    assert response.status_code == 403
    response = client.post(reverse("admin:orders_order_changelist"),
                           {"action": "refund_selected", "_selected_action": [order.pk]})
    # The action is not offered to them: the changelist comes back as it was, never a redirect to the refund form.
    assert response.status_code == 200
    assert not response.has_header("Location")
    assert 'name="action"' not in _page(response)
    assert Refund.objects.count() == 0
    order.refresh_from_db()
    assert order.refunded_amount == Decimal("0.00")


def test_staff_with_the_refund_permission_may_refund(client: Client) -> None:
    order = _order_paid_from_wallet()
    staff = _staff("view_order", "add_refund")
    client.force_login(staff)

    assert _refund_url(order) in _page(client.get(reverse("admin:orders_order_change", args=[order.pk])))
    response = _post_refund(client, order, {"amount": "30.00", "destination": "wallet", "reason": "x"})

    assert response.status_code == 302
    assert Refund.objects.get().created_by == staff
    assert wallet_balance(user_id=order.buyer_id) == Decimal("30.00")


def test_risk_events_are_listed_in_the_admin_index_and_read_only(admin_client: Client) -> None:
    event = RiskEvent.objects.create(kind="notify_rejected", message="签名错误", detail={"channel": "epay"})

    index = _page(admin_client.get(reverse("admin:index")))
    assert reverse("admin:risk_riskevent_changelist") in index
    assert "签名错误" in _page(admin_client.get(reverse("admin:risk_riskevent_changelist")))
    page = _page(admin_client.get(reverse("admin:risk_riskevent_change", args=[event.pk])))
    assert 'name="_save"' not in page
    assert admin_client.get(reverse("admin:risk_riskevent_add")).status_code == 403


def test_the_same_refund_form_posted_twice_refunds_once(admin_client: Client) -> None:
    order = _order_paid_from_wallet("10.00", 3)
    form_page = _page(admin_client.get(_refund_url(order)))
    request_id = re.search(r'name="request_id" value="([0-9a-f]{32})"', form_page)
    assert request_id is not None  # every rendered form carries its own id
    form = {"amount": "5.00", "destination": "wallet", "reason": "少发一张", "request_id": request_id.group(1)}

    first = admin_client.post(_refund_url(order), form)
    again = admin_client.post(_refund_url(order), form)  # the second click of a double click

    assert (first.status_code, again.status_code) == (302, 302)
    order.refresh_from_db()
    assert Refund.objects.filter(order=order).count() == 1
    assert order.refunded_amount == Decimal("5.00")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("5.00")


def test_a_refund_form_reused_for_another_amount_is_refused(admin_client: Client) -> None:
    order = _order_paid_from_wallet("10.00", 3)
    form = {"amount": "5.00", "destination": "wallet", "reason": "少发一张", "request_id": "f" * 32}
    admin_client.post(_refund_url(order), form)

    response = admin_client.post(_refund_url(order), {**form, "amount": "6.00"})

    assert "这张退款表单已经提交过另一笔退款" in _page(response)
    order.refresh_from_db()
    assert order.refunded_amount == Decimal("5.00")


def test_a_refund_form_without_its_id_is_refused(admin_client: Client) -> None:
    order = _order_paid_from_wallet("10.00", 3)

    admin_client.post(_refund_url(order), {"amount": "5.00", "destination": "wallet", "reason": "x"})

    assert not Refund.objects.filter(order=order).exists()


def _input_classes(page: str, name: str) -> set[str]:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    assert tag is not None, name
    classes = re.search(r'class="([^"]*)"', tag.group(0))
    return set(classes.group(1).split()) if classes else set()


def test_refund_form_inputs_carry_the_admin_theme_styles(admin_client: Client) -> None:
    # Plain Django inputs get no classes from unfold and render borderless on a white card: staff could not see
    # where to type the amount and the reason.
    order = _order_paid_from_wallet()

    page = _page(admin_client.get(_refund_url(order)))

    for name in ("amount", "reason"):
        assert {"border", "border-base-200", "bg-white", "rounded-default"} <= _input_classes(page, name)
    destinations = re.findall(r'<input[^>]*name="destination"[^>]*>', page)
    assert len(destinations) == 1
    assert 'class="' in destinations[0]


@pytest.mark.parametrize("action", ["refund", "fulfil"])
def test_a_mistyped_order_action_address_is_not_found(admin_client: Client, action: str) -> None:
    order = _order_paid_from_wallet(price="10.00", quantity=1)
    change_url = reverse("admin:orders_order_change", args=[order.pk])

    response = admin_client.get(f"{change_url}{action}/")

    assert response.status_code == 404
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.refunded_amount == Decimal("0.00")
