"""Staff settle a direct top-up attempt flagged 需人工核查 after checking with the supplier: through the same outcome
path as a supplier's answer (delivered with the serial, or failed over / refunded once), with a reason on the
order's staff timeline, on a confirmation form; a settled attempt never moves money again."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from kameng.core.errors import ConflictError
from kameng.ledger.models import AccountKind, Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.selectors import order_timeline
from kameng.suppliers.connectors.base import Outcome, TopupAnswer
from kameng.suppliers.models import AttemptStatus, TopupAttempt
from kameng.suppliers.topup import Via, attempt_outcome_apply, attempt_review_settle
from tests.factories import UserFactory
from tests.suppliers.test_topup_pipeline import _balance
from tests.suppliers.topup_support import FAILED, PROCESSING, Upstreams, fulfil, topup_order_paid, topup_sku, upstreams

__all__ = ["upstreams"]

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]
NOTE = "查询 3 次仍无最终结果，请与供货商核对后处理"


def _flagged(upstreams: Upstreams, capture: Capture, *, second_offer: bool = False) -> tuple[Order, TopupAttempt]:
    """A paid ¥50.00 order whose attempt at 甲 (¥48.00) is still unknown after the last query: flagged for staff."""
    sku = topup_sku("50.00")
    upstreams.offer("甲", sku, "48.00")[1].script(PROCESSING)
    if second_offer:
        upstreams.offer("乙", sku, "49.00")
    order = fulfil(topup_order_paid(sku), capture)
    TopupAttempt.objects.filter(order=order).update(status=AttemptStatus.UNKNOWN, needs_review=True,
                                                    review_note=NOTE, next_check_at=None)
    return order, TopupAttempt.objects.get(order=order)


def _url(attempt: TopupAttempt) -> str:
    return reverse("admin:suppliers_topupattempt_settle_review", args=[attempt.pk])


def test_staff_confirm_a_success_and_the_order_is_delivered_with_the_serial(
        admin_client: Client, upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    order, attempt = _flagged(upstreams, django_capture_on_commit_callbacks)
    change = admin_client.get(reverse("admin:suppliers_topupattempt_change", args=[attempt.pk])).content.decode()
    assert _url(attempt) in change
    page = admin_client.get(_url(attempt)).content.decode()
    assert 'id="attempt-review-form"' in page
    assert NOTE in page

    no_serial = admin_client.post(_url(attempt), {"outcome": "1", "reason": "电话核实", "confirm": "on"})
    assert no_serial.status_code == 200
    assert "确认已到账时请填写运营商流水号" in no_serial.content.decode()
    assert TopupAttempt.objects.get(pk=attempt.pk).needs_review

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(_url(attempt), {"outcome": "1", "operator_serial": "CM-20260101-7",
                                                     "reason": "供货商客服确认已到账", "confirm": "on"})

    assert response.status_code == 302
    attempt.refresh_from_db()
    order.refresh_from_db()
    assert (attempt.status, attempt.operator_serial, attempt.needs_review) == (
        AttemptStatus.SUCCEEDED, "CM-20260101-7", False)
    assert attempt.review_note == "已核查（已到账）：供货商客服确认已到账"
    assert order.status == OrderStatus.DELIVERED
    assert _balance(AccountKind.PLATFORM_REVENUE) == Decimal("50.00")
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("0.00")
    reviewed = OrderEvent.objects.get(order=order, kind=OrderEventKind.TOPUP_REVIEWED)
    assert reviewed.params == {"supplier": "甲", "outcome": "已到账", "operator_serial": "CM-20260101-7",
                               "reason": "供货商客服确认已到账", "staff": "admin"}
    assert OrderEvent.objects.get(order=order, kind=OrderEventKind.TOPUP_SUCCEEDED).params == {
        "operator_serial": "CM-20260101-7"}
    # The buyer sees 已到账 with the serial, never staff's review.
    assert OrderEventKind.TOPUP_REVIEWED not in set(order_timeline(order_id=order.pk).values_list("kind", flat=True))
    # Settled: no button, and the form is not offered again.
    change = admin_client.get(reverse("admin:suppliers_topupattempt_change", args=[attempt.pk])).content.decode()
    assert _url(attempt) not in change
    again = admin_client.post(_url(attempt), {"outcome": "0", "reason": "再来一次", "confirm": "on"})
    assert again.status_code == 302
    assert TopupAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.SUCCEEDED


def test_staff_confirm_a_failure_and_the_order_fails_over_to_the_next_offer(
        admin_client: Client, upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    order, attempt = _flagged(upstreams, django_capture_on_commit_callbacks, second_offer=True)

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(_url(attempt), {"outcome": "0", "reason": "供货商确认未充值", "confirm": "on"})

    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLING
    attempts = list(TopupAttempt.objects.filter(order=order).order_by("sequence").values_list(
        "supplier__name", "status", "needs_review"))
    assert attempts == [("甲", AttemptStatus.FAILED, False), ("乙", AttemptStatus.PROCESSING, False)]
    assert upstreams.by_name["乙"].submits == {f"{order.number}-2": 1}
    kinds = list(OrderEvent.objects.filter(order=order).order_by("pk").values_list("kind", flat=True))
    assert kinds[-4:] == [OrderEventKind.TOPUP_REVIEWED, OrderEventKind.TOPUP_FAILED_OVER, OrderEventKind.ROUTED,
                          OrderEventKind.TOPUP_PROCESSING]


def test_staff_confirm_a_failure_with_no_offer_left_and_the_buyer_is_refunded_once(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    order, attempt = _flagged(upstreams, django_capture_on_commit_callbacks)

    said = attempt_review_settle(attempt_id=attempt.pk, succeeded=False, reason="供货商确认未充值", staff_name="客服一")

    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert said == "已记录核查结论「充值失败」，订单现为「已退款」"
    assert wallet_balance(user_id=order.buyer_id) == Decimal("500.00")
    with pytest.raises(ConflictError):
        attempt_review_settle(attempt_id=attempt.pk, succeeded=False, reason="重复提交", staff_name="客服二")
    # A late failure from the supplier changes nothing either.
    attempt_outcome_apply(attempt_id=attempt.pk, answer=TopupAnswer(outcome=Outcome.FAILED), via=Via.CALLBACK)
    assert Journal.objects.filter(kind=JournalKind.ORDER_REFUND, reference=order.number).count() == 1
    assert wallet_balance(user_id=order.buyer_id) == Decimal("500.00")


def test_a_settled_attempt_flagged_for_a_late_success_records_the_verdict_and_moves_no_money(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    upstreams.offer("甲", sku, "48.00")[1].script(FAILED)
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)  # refused by all: refunded
    attempt = TopupAttempt.objects.get(order=order)
    attempt_outcome_apply(attempt_id=attempt.pk, via=Via.CALLBACK,
                          answer=TopupAnswer(outcome=Outcome.SUCCEEDED, operator_serial="LATE-1"))
    attempt.refresh_from_db()
    assert attempt.needs_review

    said = attempt_review_settle(attempt_id=attempt.pk, succeeded=True, operator_serial="LATE-1",
                                 reason="供货商称实际已到账，另行追款", staff_name="客服一")

    attempt.refresh_from_db()
    order.refresh_from_db()
    assert (attempt.status, attempt.needs_review) == (AttemptStatus.FAILED, False)
    assert order.status == OrderStatus.REFUNDED
    assert "订单（已退款）与资金不再变动" in said
    assert wallet_balance(user_id=order.buyer_id) == Decimal("500.00")
    assert Journal.objects.filter(kind=JournalKind.ORDER_REFUND, reference=order.number).count() == 1
    assert _balance(AccountKind.PLATFORM_REVENUE) == Decimal("0.00")
    assert OrderEvent.objects.filter(order=order, kind=OrderEventKind.TOPUP_REVIEWED).count() == 1


def test_staff_without_the_permission_cannot_settle(client: Client, upstreams: Upstreams,
                                                    django_capture_on_commit_callbacks: Capture) -> None:
    _, attempt = _flagged(upstreams, django_capture_on_commit_callbacks)
    staff = UserFactory.create(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_topupattempt"))
    client.force_login(staff)

    response = client.post(_url(attempt), {"outcome": "0", "reason": "x", "confirm": "on"})

    assert response.status_code == 403
    assert TopupAttempt.objects.get(pk=attempt.pk).needs_review
