"""After-sales requests at the same moment: two tabs asking about one order make one request; staff agreeing twice
at once (two tabs, a double click) refund once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from kameng.after_sales.models import AfterSalesRequest, AfterSalesStatus
from kameng.after_sales.services import after_sales_request_approve, after_sales_request_create
from kameng.core.errors import ConflictError
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.payments.models import Refund
from tests.after_sales.support import delivered_order
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_eight_concurrent_requests_about_one_order_make_one() -> None:
    requires_postgresql()
    order = delivered_order(price="10.00")

    def ask(_index: int) -> str:
        try:
            return after_sales_request_create(buyer_id=order.buyer_id, order_number=order.number,
                                              reason="key_invalid").number
        finally:
            connection.close()

    outcomes = run_in_threads(8, ask)

    refused = [outcome.error for outcome in outcomes if outcome.error is not None]
    assert unexpected(outcomes, ConflictError) == []
    assert len(refused) == 7
    assert {error.code for error in refused if isinstance(error, ConflictError)} == {"after_sales_open"}
    assert AfterSalesRequest.objects.filter(order=order, status=AfterSalesStatus.PENDING).count() == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.AFTER_SALES


def test_eight_concurrent_agreements_refund_once() -> None:
    requires_postgresql()
    order = delivered_order(price="12.50", quantity=2)
    request = after_sales_request_create(buyer_id=order.buyer_id, order_number=order.number, reason="key_used")
    staff = UserFactory.create(is_staff=True)

    def agree(_index: int) -> str:
        try:
            agreed = after_sales_request_approve(request_id=request.pk, staff_id=staff.pk)
            return agreed.status
        finally:
            connection.close()

    outcomes = run_in_threads(8, agree)

    assert unexpected(outcomes, ConflictError) == []
    request.refresh_from_db()
    assert request.status == AfterSalesStatus.APPROVED
    assert Refund.objects.filter(order=order).count() == 1
    assert request.refund is not None
    assert request.refund.amount == Decimal("25.00")
    assert Order.objects.get(pk=order.pk).refunded_amount == Decimal("25.00")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("25.00")
    assert ledger_problems() == []
