"""Staff's after-sales queue: the pending requests with the order's keys (masked), 同意并退款 through the one refund
service (the paid amount back exactly once, the step-up code over the limit), 拒绝 with a reason; every decision
in the audit log."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from kameng.accounts.staff_otp import REAUTH_SESSION_KEY
from kameng.after_sales.models import AfterSalesRequest, AfterSalesStatus
from kameng.after_sales.services import (
    after_sales_refund_request_id,
    after_sales_request_approve,
    after_sales_request_create,
    after_sales_request_reject,
)
from kameng.audit.models import AuditEntry
from kameng.core.errors import ApplicationError, ConflictError
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import OrderEvent, OrderEventKind, OrderStatus
from kameng.payments.models import Refund, RefundDestination, RefundStatus
from kameng.payments.refunds import order_refund
from tests.after_sales.support import delivered_order
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _pending(price: str = "10.00", quantity: int = 1, note: str = "卡密无效") -> AfterSalesRequest:
    order = delivered_order(price=price, quantity=quantity)
    return after_sales_request_create(buyer_id=order.buyer_id, order_number=order.number, reason="key_invalid",
                                      note=note)


def _approve_url(request: AfterSalesRequest) -> str:
    return reverse("admin:after_sales_aftersalesrequest_approve", args=[request.pk])


def _reject_url(request: AfterSalesRequest) -> str:
    return reverse("admin:after_sales_aftersalesrequest_reject", args=[request.pk])


def _refund_journals(buyer_id: int) -> int:
    return Journal.objects.filter(kind=JournalKind.ORDER_REFUND).count()


def test_the_queue_opens_on_pending_requests_with_the_keys_masked(admin_client: Client) -> None:
    pending = _pending(note="第二张卡密提示已使用")
    decided = _pending()
    after_sales_request_reject(request_id=decided.pk, staff_id=UserFactory.create(is_staff=True).pk, reply="可用")
    assert pending.order.card_keys.count() == 1

    later = _pending()
    changelist = reverse("admin:after_sales_aftersalesrequest_changelist")

    queue = admin_client.get(changelist).content.decode()
    only_pending = admin_client.get(changelist + "?status__exact=pending").content.decode()
    change = admin_client.get(reverse("admin:after_sales_aftersalesrequest_change", args=[pending.pk]))

    assert queue.index(pending.number) < queue.index(later.number) < queue.index(decided.number)
    assert pending.number in only_pending
    assert decided.number not in only_pending
    assert "第二张卡密提示已使用" in queue
    assert pending.buyer.username not in queue  # masked
    body = change.content.decode()
    assert change.status_code == 200
    assert 'data-testid="after-sales-key"' in body
    assert "已售出" in body
    assert f"KEY-{pending.order.sku_id}-000000" not in body  # the secret itself is never shown
    assert "KE**" in body
    assert _approve_url(pending) in body
    assert _reject_url(pending) in body


def test_agreeing_refunds_exactly_the_paid_amount_once(admin_client: Client) -> None:
    request = _pending(price="12.50", quantity=2)
    buyer_id = request.buyer_id
    assert wallet_balance(user_id=buyer_id) == Decimal("0.00")

    page = admin_client.get(_approve_url(request))
    response = admin_client.post(_approve_url(request), {"destination": "wallet", "confirm": "on"})

    assert page.status_code == 200
    assert response.status_code == 302
    request.refresh_from_db()
    refund = Refund.objects.get()
    assert (request.status, request.refund_id, request.open_order_id) == (AfterSalesStatus.APPROVED, refund.pk, None)
    assert (refund.amount, refund.destination, refund.status, refund.request_id) == (
        Decimal("25.00"), RefundDestination.WALLET, RefundStatus.SUCCEEDED, after_sales_refund_request_id(request))
    assert wallet_balance(user_id=buyer_id) == Decimal("25.00")
    assert _refund_journals(buyer_id) == 1
    request.order.refresh_from_db()
    assert (request.order.status, request.order.refunded_amount) == (OrderStatus.REFUNDED, Decimal("25.00"))
    entry = AuditEntry.objects.get(action="after_sales.approve")
    assert entry.object_id == str(request.pk)
    assert entry.after is not None
    assert (entry.after["refund"], entry.after["amount"], entry.after["status"]) == (refund.number, "25.00",
                                                                                     "approved")

    again = admin_client.post(_approve_url(request), {"destination": "wallet", "confirm": "on"})

    assert again.status_code == 200  # the action is no longer offered; posting it says why
    assert "售后申请当前状态为「已同意（已退款）」，不能再处理" in again.content.decode()
    assert Refund.objects.count() == 1
    assert wallet_balance(user_id=buyer_id) == Decimal("25.00")
    assert _refund_journals(buyer_id) == 1
    assert AuditEntry.objects.filter(action="after_sales.approve").count() == 1
    with pytest.raises(ConflictError) as refused:
        after_sales_request_approve(request_id=request.pk, staff_id=UserFactory.create(is_staff=True).pk)
    assert refused.value.code == "after_sales_decided"


def test_an_agreement_retried_after_the_refund_was_made_does_not_refund_again() -> None:
    """The refund committed but the request was not marked (a crash in between): agreeing again finds the refund
    by its request id and only marks the request."""
    request = _pending(price="10.00")
    staff = UserFactory.create(is_staff=True)
    earlier = order_refund(order_id=request.order_id, amount=Decimal("10.00"), destination="wallet",
                           reason="卡密无效", staff_id=staff.pk,
                           request_id=after_sales_refund_request_id(request))

    agreed = after_sales_request_approve(request_id=request.pk, staff_id=staff.pk)

    assert (agreed.status, agreed.refund_id) == (AfterSalesStatus.APPROVED, earlier.pk)
    assert Refund.objects.count() == 1
    assert wallet_balance(user_id=request.buyer_id) == Decimal("10.00")


def test_agreeing_back_through_the_original_channel_uses_the_refund_service(refund_gateway: object) -> None:
    from kameng.payments.gateways.base import RefundResult
    from kameng.payments.gateways.base import RefundStatus as GatewayRefundStatus
    from tests.payments.refund_support import order_paid_by_channel

    order, payment = order_paid_by_channel(price="30.00")
    request = after_sales_request_create(buyer_id=order.buyer_id, order_number=order.number, reason="key_used")
    refund_gateway.answers.append(RefundResult(status=GatewayRefundStatus.SUCCEEDED,  # type: ignore[attr-defined]
                                               gateway_refund_no="G1"))

    agreed = after_sales_request_approve(request_id=request.pk, staff_id=UserFactory.create(is_staff=True).pk,
                                         destination=RefundDestination.ORIGINAL)

    refund = Refund.objects.get()
    assert (agreed.refund_id, refund.amount, refund.status, refund.payment_id) == (
        refund.pk, Decimal("30.00"), RefundStatus.SUCCEEDED, payment.pk)
    assert len(refund_gateway.calls) == 1  # type: ignore[attr-defined]
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")  # it went back to the channel


@override_settings(KAMENG_STAFF_REAUTH_REFUND_OVER="100.00")
def test_agreeing_to_a_refund_over_the_limit_asks_for_the_code_again(admin_client: Client) -> None:
    request = _pending(price="150.00")
    session = admin_client.session
    session[REAUTH_SESSION_KEY] = int(time.time()) - settings.KAMENG_STAFF_REAUTH_SECONDS - 1
    session.save()

    denied = admin_client.post(_approve_url(request), {"destination": "wallet", "confirm": "on"})

    assert denied.status_code == 403
    assert 'id="staff-reauth-form"' in denied.content.decode()
    assert Refund.objects.count() == 0
    request.refresh_from_db()
    assert request.status == AfterSalesStatus.PENDING


def test_rejecting_needs_a_reason_the_buyer_reads(admin_client: Client) -> None:
    request = _pending()

    empty = admin_client.post(_reject_url(request), {"reply": "   "})
    request.refresh_from_db()
    assert empty.status_code == 200
    assert request.status == AfterSalesStatus.PENDING
    assert AuditEntry.objects.filter(action="after_sales.reject").count() == 0
    with pytest.raises(ApplicationError) as refused:
        after_sales_request_reject(request_id=request.pk, staff_id=UserFactory.create(is_staff=True).pk, reply=" ")
    assert (refused.value.code, refused.value.message) == ("reply_required", "请填写拒绝原因（买家可见）")

    response = admin_client.post(_reject_url(request), {"reply": "卡密经核实未被使用"})

    assert response.status_code == 302
    request.refresh_from_db()
    assert (request.status, request.staff_reply, request.open_order_id) == (
        AfterSalesStatus.REJECTED, "卡密经核实未被使用", None)
    request.order.refresh_from_db()
    assert request.order.status == OrderStatus.DELIVERED
    event = OrderEvent.objects.filter(order=request.order).last()
    assert event is not None
    assert (event.kind, event.message) == (OrderEventKind.AFTER_SALES_REJECTED, "售后申请未通过：卡密经核实未被使用")
    assert Refund.objects.count() == 0
    entry = AuditEntry.objects.get(action="after_sales.reject")
    assert entry.after is not None
    assert entry.after["reply"] == "卡密经核实未被使用"


def test_staff_without_the_refund_permission_cannot_agree(client: Client) -> None:
    from django.contrib.auth.models import Permission

    request = _pending()
    staff = UserFactory.create(is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_aftersalesrequest",
                                                                        "change_aftersalesrequest"]))
    client.force_login(staff)

    response = client.post(_approve_url(request), {"destination": "wallet", "confirm": "on"})

    assert response.status_code == 403
    assert Refund.objects.count() == 0


def test_the_buyer_sees_the_agreement_and_the_refund(client: Client) -> None:
    request = _pending(price="10.00")
    after_sales_request_approve(request_id=request.pk, staff_id=UserFactory.create(is_staff=True).pk)
    client.force_login(request.buyer)

    page = client.get(reverse("web:order_detail", args=[request.order.number])).content.decode()
    listing = client.get(reverse("web:after_sales_list")).content.decode()

    assert 'data-testid="after-sales-status">已同意（已退款）<' in page
    assert 'data-testid="after-sales-refund">已退款 ¥10.00<' in page
    assert "已退款 ¥10.00 到钱包余额（卡密无效）" in page  # the timeline
    assert 'data-testid="after-sales-list-status">已同意（已退款）<' in listing
    assert 'data-testid="request-after-sales"' not in page  # refunded in full: nothing left to ask about
