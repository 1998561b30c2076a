"""Suppliers' top-up callbacks at /suppliers/callback/<supplier id>/: forgeries refused with nothing changed (and
answered as an unknown supplier id is, whatever the connector), duplicates and late ones processed once, a success
for an attempt we had failed flagged loudly for staff."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.suppliers.models import AttemptStatus, ConnectorKind, Supplier, TopupAttempt
from tests.factories import SupplierFactory
from tests.suppliers.topup_support import (
    FAILED,
    REFUSED,
    SUCCEEDED,
    FakeUpstream,
    Upstreams,
    fulfil,
    topup_order_paid,
    topup_sku,
    upstreams,
)

__all__ = ["upstreams"]

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


def _processing_order(upstreams: Upstreams, capture: Capture) -> tuple[Order, TopupAttempt, FakeUpstream]:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    order = fulfil(topup_order_paid(sku), capture)
    attempt = TopupAttempt.objects.get(order=order)
    assert attempt.status == AttemptStatus.PROCESSING
    return order, attempt, upstream


def _post(supplier_id: int, body: bytes, capture: Capture) -> Any:
    with capture(execute=True):
        return Client().post(f"/suppliers/callback/{supplier_id}/", data=body, content_type="application/json")


def _snapshot(order: Order) -> tuple[Any, ...]:
    order.refresh_from_db()
    attempts = list(TopupAttempt.objects.filter(order=order).order_by("pk").values())
    return (order.status, order.refunded_amount, OrderEvent.objects.filter(order=order).count(),
            Journal.objects.count(), attempts)


def test_a_signed_success_callback_delivers_the_order(upstreams: Upstreams,
                                                      django_capture_on_commit_callbacks: Capture) -> None:
    order, attempt, upstream = _processing_order(upstreams, django_capture_on_commit_callbacks)

    response = _post(attempt.supplier_id, upstream.callback_body(attempt.customer_order_no),
                     django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert response.content == b"success"
    order.refresh_from_db()
    attempt.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert (attempt.status, attempt.operator_serial) == (AttemptStatus.SUCCEEDED, f"SN-{attempt.customer_order_no}")
    assert Journal.objects.filter(kind=JournalKind.ORDER_SALE, reference=order.number).count() == 1


def test_a_forged_callback_is_refused_and_changes_nothing(upstreams: Upstreams,
                                                          django_capture_on_commit_callbacks: Capture) -> None:
    order, attempt, _upstream = _processing_order(upstreams, django_capture_on_commit_callbacks)
    before = _snapshot(order)
    forger = FakeUpstream(name="forger", secret=b"not-the-secret")

    forged = _post(attempt.supplier_id, forger.callback_body(attempt.customer_order_no),
                   django_capture_on_commit_callbacks)
    garbled = _post(attempt.supplier_id, b"{not json", django_capture_on_commit_callbacks)

    assert (forged.status_code, garbled.status_code) == (400, 400)
    assert _snapshot(order) == before


def test_a_callback_signed_for_another_supplier_is_refused(upstreams: Upstreams,
                                                          django_capture_on_commit_callbacks: Capture) -> None:
    order, attempt, _upstream = _processing_order(upstreams, django_capture_on_commit_callbacks)
    other, other_upstream = upstreams.supplier("乙")
    other_upstream.secret = b"another-secret"
    before = _snapshot(order)

    response = _post(other.pk, other_upstream.callback_body(attempt.customer_order_no),
                     django_capture_on_commit_callbacks)

    assert response.status_code == 404  # that supplier has no such order
    assert _snapshot(order) == before


def test_unknown_suppliers_and_get_requests_are_refused(upstreams: Upstreams,
                                                        django_capture_on_commit_callbacks: Capture) -> None:
    order, attempt, upstream = _processing_order(upstreams, django_capture_on_commit_callbacks)
    before = _snapshot(order)
    missing = (Supplier.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 100

    assert _post(missing, upstream.callback_body(attempt.customer_order_no),
                 django_capture_on_commit_callbacks).status_code == 400
    assert Client().get(f"/suppliers/callback/{attempt.supplier_id}/").status_code == 405
    assert _snapshot(order) == before


def test_an_unknown_supplier_id_and_a_bad_signature_get_the_same_answer(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture, caplog: pytest.LogCaptureFixture) -> None:
    """Nothing in the answer tells a caller whether a supplier id exists; only the log says which it was."""
    _, attempt, _upstream = _processing_order(upstreams, django_capture_on_commit_callbacks)
    missing = (Supplier.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 100
    forged_body = FakeUpstream(name="forger", secret=b"not-the-secret").callback_body(attempt.customer_order_no)
    huge = b"x" * (64 * 1024 + 1)

    with caplog.at_level(logging.WARNING, logger="kameng.suppliers.callbacks"):
        unknown = _post(missing, forged_body, django_capture_on_commit_callbacks)
        forged = _post(attempt.supplier_id, forged_body, django_capture_on_commit_callbacks)

    assert (unknown.status_code, unknown.content) == (forged.status_code, forged.content) == (400, b"rejected")
    assert unknown.headers["Content-Type"] == forged.headers["Content-Type"]
    messages = [record.getMessage() for record in caplog.records]
    assert f"callback for an unknown supplier id {missing} rejected" in messages
    assert any(message.startswith(f"callback of supplier {attempt.supplier_id} rejected") for message in messages)
    # A body too large is refused alike whether the supplier exists or not.
    assert (_post(missing, huge, django_capture_on_commit_callbacks).status_code,
            _post(attempt.supplier_id, huge, django_capture_on_commit_callbacks).status_code) == (413, 413)


@pytest.mark.parametrize("kind", [kind.value for kind in ConnectorKind])
@pytest.mark.parametrize("config", ["", "{}", "not json", json.dumps({"app_key": "k", "app_secret": "s",
                                                                     "key_id": "kk_x", "secret": "s"})])
def test_no_connector_kind_or_config_tells_an_existing_supplier_from_an_unknown_id(kind: str, config: str) -> None:
    """Whatever the supplier's connector and however its config is broken, a callback that does not verify is
    answered exactly as one for an id that does not exist (never a 404, 500 or another body)."""
    supplier = SupplierFactory.create(connector_kind=kind, connector_config=config)
    unknown_id = supplier.pk + 1000
    for body in (b"", b"{}", b"[1]", b"order_no=1&sign=x", b'{"request_no": "K1", "status": "delivered"}', b"\xff"):
        known = Client().post(f"/suppliers/callback/{supplier.pk}/", data=body, content_type="application/json")
        unknown = Client().post(f"/suppliers/callback/{unknown_id}/", data=body, content_type="application/json")
        assert (known.status_code, known.content, known["Content-Type"]) == (
            unknown.status_code, unknown.content, unknown["Content-Type"]) == (
            400, b"rejected", "text/plain; charset=utf-8"), (kind, config, body)


def test_a_duplicate_callback_is_processed_once(upstreams: Upstreams,
                                                django_capture_on_commit_callbacks: Capture) -> None:
    order, attempt, upstream = _processing_order(upstreams, django_capture_on_commit_callbacks)
    body = upstream.callback_body(attempt.customer_order_no)

    first = _post(attempt.supplier_id, body, django_capture_on_commit_callbacks)
    after_first = _snapshot(order)
    second = _post(attempt.supplier_id, body, django_capture_on_commit_callbacks)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.content == b"success"  # acknowledged, so the upstream stops retrying
    assert _snapshot(order) == after_first
    assert OrderEvent.objects.filter(order=order, kind=OrderEventKind.TOPUP_SUCCEEDED).count() == 1
    assert Journal.objects.filter(kind=JournalKind.ORDER_SALE, reference=order.number).count() == 1


def test_a_late_callback_after_a_query_settled_the_attempt_changes_nothing(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    upstream.script(SUCCEEDED)  # the submit's answer settles it first
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)
    attempt = TopupAttempt.objects.get(order=order)
    before = _snapshot(order)

    response = _post(attempt.supplier_id, upstream.callback_body(attempt.customer_order_no),
                     django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert _snapshot(order) == before


def test_a_failure_callback_fails_over_to_the_next_offer(upstreams: Upstreams,
                                                        django_capture_on_commit_callbacks: Capture) -> None:
    order, attempt, upstream = _processing_order(upstreams, django_capture_on_commit_callbacks)
    _, second = upstreams.offer("乙", order.sku, "49.00")
    second.script(SUCCEEDED)

    response = _post(attempt.supplier_id, upstream.callback_body(attempt.customer_order_no, FAILED),
                     django_capture_on_commit_callbacks)

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert list(TopupAttempt.objects.filter(order=order).order_by("sequence").values_list("status", flat=True)) == [
        AttemptStatus.FAILED, AttemptStatus.SUCCEEDED]


def test_a_failure_callback_with_no_other_offer_refunds_once(upstreams: Upstreams,
                                                            django_capture_on_commit_callbacks: Capture) -> None:
    order, attempt, upstream = _processing_order(upstreams, django_capture_on_commit_callbacks)
    body = upstream.callback_body(attempt.customer_order_no, FAILED)

    _post(attempt.supplier_id, body, django_capture_on_commit_callbacks)
    _post(attempt.supplier_id, body, django_capture_on_commit_callbacks)

    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert wallet_balance(user_id=order.buyer_id) == Decimal("500.00")
    assert Journal.objects.filter(kind=JournalKind.ORDER_REFUND, reference=order.number).count() == 1


def test_a_success_callback_for_an_attempt_already_failed_over_is_flagged_loudly(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture, caplog: pytest.LogCaptureFixture) -> None:
    sku = topup_sku("50.00")
    _, first = upstreams.offer("甲", sku, "47.00")
    first.script(REFUSED)
    upstreams.offer("乙", sku, "48.00")[1].script(SUCCEEDED)
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)
    failed = TopupAttempt.objects.get(order=order, sequence=1)
    assert failed.status == AttemptStatus.FAILED
    journals = Journal.objects.count()

    with caplog.at_level(logging.ERROR, logger="kameng.suppliers.topup"):
        response = _post(failed.supplier_id, first.callback_body(failed.customer_order_no, serial="LATE-1"),
                         django_capture_on_commit_callbacks)

    assert response.status_code == 200
    failed.refresh_from_db()
    assert failed.status == AttemptStatus.FAILED
    assert failed.needs_review
    assert "可能重复充值" in failed.review_note
    assert "LATE-1" in failed.review_note
    assert failed.operator_serial == "LATE-1"
    assert any(record.levelno == logging.ERROR and failed.customer_order_no in record.getMessage()
               for record in caplog.records)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert Journal.objects.count() == journals


def test_a_success_callback_after_the_order_was_refunded_is_flagged(upstreams: Upstreams,
                                                                   django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "47.00")
    upstream.script(REFUSED)
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)
    attempt = TopupAttempt.objects.get(order=order)
    assert order.status == OrderStatus.REFUNDED

    _post(attempt.supplier_id, upstream.callback_body(attempt.customer_order_no), django_capture_on_commit_callbacks)

    attempt.refresh_from_db()
    order.refresh_from_db()
    assert attempt.needs_review
    assert order.status == OrderStatus.REFUNDED
    assert wallet_balance(user_id=order.buyer_id) == Decimal("500.00")
