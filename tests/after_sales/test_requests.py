"""The buyer's after-sales request (售后申请): only on their own delivered order, within the window after delivery,
one pending at a time, a reason and a note of at most 500 characters; withdrawing it; the risk engine's refund
checkpoint deciding when the buyer asks. Storefront pages and the JSON API."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from kameng.after_sales.models import AfterSalesRequest, AfterSalesStatus
from kameng.after_sales.services import (
    after_sales_deadline,
    after_sales_refusal,
    after_sales_request_create,
    after_sales_request_reject,
    after_sales_request_withdraw,
)
from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.risk.engine import RiskBlockedError
from kameng.risk.models import Action, Checkpoint, Decision, RiskDecision, RuleKind
from tests.after_sales.support import delivered_order
from tests.factories import UserFactory
from tests.risk.support import rule

pytestmark = pytest.mark.django_db

SEVEN_DAYS = 7 * 24 * 3600


def _ask(client: Client, order: Order, reason: str = "key_invalid", note: str = "卡密提示无效") -> object:
    return client.post(reverse("web:order_after_sales", args=[order.number]), {"reason": reason, "note": note})


def test_a_buyer_asks_about_their_own_delivered_order(client: Client) -> None:
    order = delivered_order(price="10.00")
    client.force_login(order.buyer)

    form = client.get(reverse("web:order_after_sales", args=[order.number]))
    response = _ask(client, order)

    assert form.status_code == 200
    assert response.status_code == 302  # type: ignore[attr-defined]
    assert response["Location"] == reverse("web:order_detail", args=[order.number])  # type: ignore[index]
    request = AfterSalesRequest.objects.get()
    assert (request.order_id, request.buyer_id, request.reason, request.note, request.amount, request.status) == (
        order.pk, order.buyer_id, "key_invalid", "卡密提示无效", Decimal("10.00"), AfterSalesStatus.PENDING)
    order.refresh_from_db()
    assert order.status == OrderStatus.AFTER_SALES
    event = OrderEvent.objects.filter(order=order).last()
    assert event is not None
    assert (event.kind, event.message) == (OrderEventKind.AFTER_SALES, "已申请售后（卡密无效），等待处理")
    page = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    assert 'data-testid="after-sales-status">待处理<' in page
    assert 'data-testid="withdraw-after-sales"' in page
    assert 'data-testid="request-after-sales"' not in page
    listing = client.get(reverse("web:after_sales_list")).content.decode()
    assert request.number in listing
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")  # asking moves no money


def test_another_buyers_order_is_not_found_and_nothing_is_written(client: Client) -> None:
    order = delivered_order()
    client.force_login(UserFactory.create())

    page = client.get(reverse("web:order_after_sales", args=[order.number]))
    posted = _ask(client, order)
    withdrawn = client.post(reverse("web:order_after_sales_withdraw", args=[order.number]))
    api = client.post(f"/api/v1/shop/orders/{order.number}/after-sales", {"reason": "key_invalid"},
                      content_type="application/json")

    assert (page.status_code, posted.status_code, withdrawn.status_code) == (404, 404, 404)  # type: ignore[attr-defined]
    assert (api.status_code, api.json()["code"]) == (404, "order_not_found")
    assert AfterSalesRequest.objects.count() == 0
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    with pytest.raises(NotFoundError):
        after_sales_request_create(buyer_id=UserFactory.create().pk, order_number=order.number, reason="key_used")


def test_the_window_ends_exactly_seven_days_after_delivery() -> None:
    order = delivered_order()
    assert order.delivered_at is not None
    deadline = after_sales_deadline(order)

    assert deadline == order.delivered_at + timedelta(days=7)
    assert after_sales_refusal(order, now=deadline) is None
    late = after_sales_refusal(order, now=deadline + timedelta(microseconds=1))
    assert late is not None
    assert (late.code, late.status_code, late.message) == (
        "after_sales_window_passed", 409, "已超过售后期限：发货后 7 天内可申请售后")


def test_a_request_just_inside_the_window_is_taken_and_one_just_outside_refused(client: Client) -> None:
    inside, outside = delivered_order(), delivered_order()
    now = timezone.now()
    Order.objects.filter(pk=inside.pk).update(delivered_at=now - timedelta(days=7) + timedelta(minutes=1))
    Order.objects.filter(pk=outside.pk).update(delivered_at=now - timedelta(days=7) - timedelta(seconds=1))

    after_sales_request_create(buyer_id=inside.buyer_id, order_number=inside.number, reason="key_used")
    client.force_login(outside.buyer)
    refused = _ask(client, outside)

    assert refused.status_code == 409  # type: ignore[attr-defined]
    assert "已超过售后期限：发货后 7 天内可申请售后" in refused.content.decode()  # type: ignore[attr-defined]
    assert list(AfterSalesRequest.objects.values_list("order_id", flat=True)) == [inside.pk]


@override_settings(KAMENG_AFTER_SALES_WINDOW_DAYS=3)
def test_the_window_is_a_setting() -> None:
    order = delivered_order()
    Order.objects.filter(pk=order.pk).update(delivered_at=timezone.now() - timedelta(days=3, seconds=1))
    order.refresh_from_db()

    refusal = after_sales_refusal(order)

    assert refusal is not None
    assert refusal.message == "已超过售后期限：发货后 3 天内可申请售后"


def test_a_second_open_request_on_the_order_is_refused_clearly(client: Client) -> None:
    order = delivered_order()
    client.force_login(order.buyer)
    _ask(client, order)

    second = _ask(client, order, reason="other", note="再提交一次")
    api = client.post(f"/api/v1/shop/orders/{order.number}/after-sales", {"reason": "key_used"},
                      content_type="application/json")

    assert second.status_code == 409  # type: ignore[attr-defined]
    assert "该订单已有一个待处理的售后申请，请等待客服处理或先撤销" in second.content.decode()  # type: ignore[attr-defined]
    assert (api.status_code, api.json()["code"]) == (409, "after_sales_open")
    assert AfterSalesRequest.objects.count() == 1


@pytest.mark.parametrize(("reason", "note", "code"), [
    ("", "", "reason_required"), ("refund_please", "", "reason_required"), ("other", "   ", "note_required"),
    ("key_invalid", "长" * 501, "note_too_long")])
def test_a_reason_is_required_and_the_note_is_at_most_500_characters(reason: str, note: str, code: str) -> None:
    order = delivered_order()

    with pytest.raises(ApplicationError) as refused:
        after_sales_request_create(buyer_id=order.buyer_id, order_number=order.number, reason=reason, note=note)

    assert (refused.value.code, refused.value.status_code) == (code, 400)
    assert AfterSalesRequest.objects.count() == 0


def test_a_note_of_exactly_500_characters_is_kept() -> None:
    order = delivered_order()

    request = after_sales_request_create(buyer_id=order.buyer_id, order_number=order.number, reason="other",
                                         note="长" * 500)

    assert request.note == "长" * 500


def test_an_order_not_delivered_cannot_be_asked_about(client: Client) -> None:
    order = delivered_order()
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.REFUNDED, refunded_amount=order.total_amount)
    client.force_login(order.buyer)

    page = client.get(reverse("web:order_after_sales", args=[order.number]))

    assert page.status_code == 409
    assert "订单状态为「已退款」，不能申请售后" in page.content.decode()


def test_the_buyer_withdraws_a_pending_request_and_may_ask_again(client: Client) -> None:
    order = delivered_order()
    client.force_login(order.buyer)
    _ask(client, order)

    response = client.post(reverse("web:order_after_sales_withdraw", args=[order.number]))

    assert response.status_code == 302
    request = AfterSalesRequest.objects.get()
    assert (request.status, request.open_order_id) == (AfterSalesStatus.WITHDRAWN, None)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert list(OrderEvent.objects.filter(order=order).values_list("kind", flat=True))[-2:] == [
        OrderEventKind.AFTER_SALES, OrderEventKind.AFTER_SALES_WITHDRAWN]
    assert _ask(client, order).status_code == 302  # type: ignore[attr-defined]
    assert AfterSalesRequest.objects.filter(status=AfterSalesStatus.PENDING).count() == 1


def test_a_decided_request_cannot_be_withdrawn() -> None:
    order = delivered_order()
    request = after_sales_request_create(buyer_id=order.buyer_id, order_number=order.number, reason="key_used")
    after_sales_request_reject(request_id=request.pk, staff_id=UserFactory.create(is_staff=True).pk,
                               reply="卡密已核实可用")

    with pytest.raises(ConflictError) as refused:
        after_sales_request_withdraw(buyer_id=order.buyer_id, order_number=order.number)

    assert refused.value.code == "after_sales_none_open"
    request.refresh_from_db()
    assert request.status == AfterSalesStatus.REJECTED


def test_the_buyer_sees_the_staff_answer_on_the_order_and_in_the_list(client: Client) -> None:
    order = delivered_order()
    request = after_sales_request_create(buyer_id=order.buyer_id, order_number=order.number, reason="key_used")
    after_sales_request_reject(request_id=request.pk, staff_id=UserFactory.create(is_staff=True).pk,
                               reply="卡密已核实可用，请确认充值区服")
    client.force_login(order.buyer)

    page = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    listing = client.get(reverse("web:after_sales_list")).content.decode()

    for body in (page, listing):
        assert "已拒绝" in body
        assert "卡密已核实可用，请确认充值区服" in body
    assert "售后申请未通过：卡密已核实可用，请确认充值区服" in page  # the timeline line
    assert 'data-testid="withdraw-after-sales"' not in page


# --- the risk engine's refund checkpoint --------------------------------------------------------------------------

def _refund_frequency_rule(action: str = Action.BLOCK) -> None:
    rule(checkpoint=Checkpoint.REFUND, kind=RuleKind.REFUND_FREQUENCY, limit=3, window_seconds=SEVEN_DAYS,
         action=action)


def test_three_requests_in_seven_days_pass_and_the_fourth_is_blocked(client: Client) -> None:
    _refund_frequency_rule()
    buyer = UserFactory.create()
    orders = [delivered_order(buyer) for _ in range(4)]
    client.force_login(buyer)

    answers = [_ask(client, order).status_code for order in orders]  # type: ignore[attr-defined]

    assert answers == [302, 302, 302, 403]
    fourth = _ask(client, orders[3])
    assert "您的操作存在风险，已被系统拦截。如有疑问请联系客服" in fourth.content.decode()  # type: ignore[attr-defined]
    assert AfterSalesRequest.objects.count() == 3
    orders[3].refresh_from_db()
    assert orders[3].status == OrderStatus.DELIVERED
    blocked = RiskDecision.objects.filter(checkpoint=Checkpoint.REFUND, decision=Decision.BLOCK)
    assert blocked.count() == 2
    decision = blocked.first()
    assert decision is not None
    assert (decision.user_id, decision.inputs["refunds"], decision.inputs["amount"]) == (buyer.pk, 3, "10.00")


def test_withdrawn_requests_do_not_count_and_staff_refunds_do(client: Client) -> None:
    from kameng.payments.refunds import order_refund

    _refund_frequency_rule()
    buyer = UserFactory.create()
    orders = [delivered_order(buyer) for _ in range(4)]
    after_sales_request_create(buyer_id=buyer.pk, order_number=orders[0].number, reason="key_used")
    after_sales_request_withdraw(buyer_id=buyer.pk, order_number=orders[0].number)
    order_refund(order_id=orders[1].pk, amount=Decimal("10.00"), destination="wallet", reason="客服退款")
    after_sales_request_create(buyer_id=buyer.pk, order_number=orders[2].number, reason="key_used")

    after_sales_request_create(buyer_id=buyer.pk, order_number=orders[0].number, reason="key_used")  # 3rd: passes
    with pytest.raises(RiskBlockedError):
        after_sales_request_create(buyer_id=buyer.pk, order_number=orders[3].number, reason="key_used")


def test_requests_older_than_the_window_do_not_count() -> None:
    _refund_frequency_rule()
    buyer = UserFactory.create()
    orders = [delivered_order(buyer) for _ in range(4)]
    for order in orders[:3]:
        after_sales_request_create(buyer_id=buyer.pk, order_number=order.number, reason="key_used")
    AfterSalesRequest.objects.filter(order=orders[0]).update(created_at=timezone.now() - timedelta(days=7, seconds=1))

    after_sales_request_create(buyer_id=buyer.pk, order_number=orders[3].number, reason="key_used")

    assert AfterSalesRequest.objects.count() == 4


def test_a_review_rule_lets_the_request_through_and_flags_it_for_staff() -> None:
    _refund_frequency_rule(action=Action.REVIEW)
    buyer = UserFactory.create()
    orders = [delivered_order(buyer) for _ in range(4)]

    requests = [after_sales_request_create(buyer_id=buyer.pk, order_number=order.number, reason="key_used")
                for order in orders]

    assert [request.risk_decision_id is not None for request in requests] == [False, False, False, True]
    decision = requests[3].risk_decision
    assert decision is not None
    assert (decision.checkpoint, decision.decision) == (Checkpoint.REFUND, Decision.REVIEW)


# --- the JSON API ---------------------------------------------------------------------------------------------------

def test_the_api_asks_lists_and_withdraws(client: Client) -> None:
    order = delivered_order(price="12.50")
    client.force_login(order.buyer)
    url = f"/api/v1/shop/orders/{order.number}/after-sales"

    created = client.post(url, {"reason": "not_credited", "note": "没到账"}, content_type="application/json")
    listed = client.get("/api/v1/shop/after-sales")
    withdrawn = client.post(f"{url}/withdraw")
    again = client.post(f"{url}/withdraw")

    assert created.status_code == 201
    body = created.json()
    assert (body["order_number"], body["reason"], body["reason_display"], body["note"], body["amount"],
            body["status"], body["status_display"], body["refund_number"]) == (
        order.number, "not_credited", "充值未到账", "没到账", "12.50", "pending", "待处理", "")
    assert [row["number"] for row in listed.json()] == [body["number"]]
    assert (withdrawn.status_code, withdrawn.json()["status"]) == (200, "withdrawn")
    assert (again.status_code, again.json()["code"]) == (409, "after_sales_none_open")


def test_the_api_answers_a_risk_block_with_403_and_a_bad_reason_with_400(client: Client) -> None:
    rule(checkpoint=Checkpoint.REFUND, kind=RuleKind.AMOUNT, amount_threshold="5.00",
         message="退款金额过大，请联系客服")
    order = delivered_order(price="10.00")
    client.force_login(order.buyer)
    url = f"/api/v1/shop/orders/{order.number}/after-sales"

    bad = client.post(url, {"reason": "whatever"}, content_type="application/json")
    blocked = client.post(url, {"reason": "key_invalid"}, content_type="application/json")

    assert (bad.status_code, bad.json()["code"]) == (400, "reason_required")
    assert (blocked.status_code, blocked.json()["code"], blocked.json()["message"]) == (
        403, "risk_blocked", "退款金额过大，请联系客服")
    assert AfterSalesRequest.objects.count() == 0
