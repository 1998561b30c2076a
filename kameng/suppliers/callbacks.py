"""Suppliers' callbacks (异步通知) for direct top-ups: verified by the supplier's connector, applied once.

A callback that does not verify, or names a supplier id that does not exist, is answered 400 "rejected" (the same
answer for both, so a caller cannot enumerate supplier ids; the log says which) and changes nothing. A verified one
is written like any other answer (kameng.suppliers.topup.attempt_outcome_apply): a duplicate, or a late one for an
attempt a query already settled or that was failed over, changes nothing and is acknowledged, so the upstream stops
retrying; a success for an attempt we had failed is flagged for staff there.

A connector whose callback signature is weak (`callbacks_prompt_query`: Fulu's MD5 of the sorted characters verifies
any permutation of a genuine callback's characters) is not believed on its word: its callback makes the attempt due
and it is queried soon by the worker (kameng.suppliers.dispatch.topup_query_prompt: a task, or the worker's due
poller coalescing many callbacks into one claim), the query's signed answer deciding. The callback is acknowledged
once the attempt is due in the database: the query is then owed whatever happens to this request. A callback
naming another supplier order id than the one the supplier gave us is refused. Such a callback costs one statement
(the conditional UPDATE that makes the attempt due) when its attempt is live; the supplier's connector is held for
`KAMENG_TOPUP_CALLBACK_CONNECTOR_SECONDS`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings

from kameng.core.errors import ApplicationError
from kameng.suppliers.connectors.base import CallbackRejectedError, CallbackResult, SupplierConnector
from kameng.suppliers.connectors.registry import connector_for
from kameng.suppliers.dispatch import topup_query_prompt_by_number
from kameng.suppliers.models import Supplier, TopupAttempt
from kameng.suppliers.topup import Via, attempt_outcome_apply

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
CONNECTORS_HELD_MAX = 1024


@dataclass(frozen=True)
class CallbackReply:
    status: int
    body: str


# The one answer to a callback that is not believed (unknown supplier id, bad signature, unreadable): the same status
# and body whatever the cause, which only the log tells apart.
REJECTED = CallbackReply(400, "rejected")


class _RejectedError(Exception):
    def __init__(self, reply: CallbackReply) -> None:
        self.reply = reply


def topup_callback_process(*, supplier_id: int, body: bytes, headers: Mapping[str, str]) -> CallbackReply:
    """Verify and apply one callback of the supplier; the HTTP answer for it. Call it outside any transaction."""
    try:
        connector, result = _verified(supplier_id, body, headers)
        if getattr(connector, "callbacks_prompt_query", False):
            # One statement when it is the common case (a live attempt made due); the others are looked at after.
            if not topup_query_prompt_by_number(supplier_id=supplier_id, customer_order_no=result.customer_order_no,
                                                supplier_order_id=result.answer.supplier_order_id):
                _attempt_of(supplier_id, result)  # unknown, another supplier order (refused) or settled already
        else:
            attempt_outcome_apply(attempt_id=_attempt_of(supplier_id, result), answer=result.answer,
                                  via=Via.CALLBACK)
    except _RejectedError as rejected:
        return rejected.reply
    return CallbackReply(200, result.reply)


_connectors: dict[int, tuple[float, SupplierConnector | None]] = {}


def _connector(supplier_id: int) -> SupplierConnector | None:
    """The supplier's connector (None: no such supplier), held `KAMENG_TOPUP_CALLBACK_CONNECTOR_SECONDS` per process
    so a stream of callbacks reads and decrypts the supplier's row once, not once each; a changed config (a new
    secret) is seen that much later. What cannot be built is not held."""
    seconds = float(getattr(settings, "KAMENG_TOPUP_CALLBACK_CONNECTOR_SECONDS", 0))
    now = time.monotonic()
    held = _connectors.get(supplier_id)
    if held is not None and held[0] > now:
        return held[1]
    supplier = Supplier.objects.filter(pk=supplier_id).first()
    connector = connector_for(supplier) if supplier is not None else None
    if seconds > 0:
        if len(_connectors) > CONNECTORS_HELD_MAX:
            _connectors.clear()
        _connectors[supplier_id] = (now + seconds, connector)
    return connector


def _verified(supplier_id: int, body: bytes, headers: Mapping[str, str]) -> tuple[SupplierConnector, CallbackResult]:
    """The connector and the verified callback; `_RejectedError` with the answer otherwise."""
    if len(body) > MAX_BODY_BYTES:  # before the look-up: the answer must not depend on the supplier existing
        raise _RejectedError(CallbackReply(413, "payload too large"))
    try:
        connector = _connector(supplier_id)
        if connector is None:  # answered as a bad signature is, so a caller cannot tell which supplier ids exist
            logger.warning("callback for an unknown supplier id %s rejected", supplier_id)
            raise _RejectedError(REJECTED)
        result = connector.callback_verify(body=body, headers=headers)
    except CallbackRejectedError as error:
        logger.warning("callback of supplier %s rejected: %s", supplier_id, error)
        raise _RejectedError(REJECTED) from error
    except ApplicationError as error:
        logger.warning("callback of supplier %s cannot be read: %s", supplier_id, error.message)
        raise _RejectedError(REJECTED) from error
    except ValueError as error:  # the supplier's stored config is not JSON: staff must fix it
        logger.exception("callback of supplier %s: its connector config cannot be read", supplier_id)
        raise _RejectedError(REJECTED) from error
    return connector, result


def _attempt_of(supplier_id: int, result: CallbackResult) -> int:
    """The callback's attempt; `_RejectedError` for an unknown number or another supplier order than ours."""
    attempt = (TopupAttempt.objects.filter(customer_order_no=result.customer_order_no, supplier_id=supplier_id)
               .values("pk", "supplier_order_id").first())
    if attempt is None:
        logger.warning("callback of supplier %s for an unknown order number %s", supplier_id,
                       result.customer_order_no)
        raise _RejectedError(CallbackReply(404, "unknown order"))
    named = result.answer.supplier_order_id
    if attempt["supplier_order_id"] and named and named != attempt["supplier_order_id"]:
        logger.warning("callback of supplier %s for %s names another supplier order", supplier_id,
                       result.customer_order_no)
        raise _RejectedError(REJECTED)
    return int(attempt["pk"])
