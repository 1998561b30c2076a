"""Suppliers' callbacks (异步通知) for direct top-ups: verified by the supplier's connector, applied once.

A callback that does not verify is answered 400 and changes nothing. A verified one is written like any other
answer (kameng.suppliers.topup.attempt_outcome_apply): a duplicate, or a late one for an attempt a query already
settled or that was failed over, changes nothing and is acknowledged, so the upstream stops retrying; a success for
an attempt we had failed is flagged for staff there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from kameng.core.errors import ApplicationError
from kameng.suppliers.connectors.base import CallbackRejectedError
from kameng.suppliers.connectors.registry import connector_for
from kameng.suppliers.models import Supplier, TopupAttempt
from kameng.suppliers.topup import Via, attempt_outcome_apply

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class CallbackReply:
    status: int
    body: str


def topup_callback_process(*, supplier_id: int, body: bytes, headers: Mapping[str, str]) -> CallbackReply:
    """Verify and apply one callback of the supplier; the HTTP answer for it. Call it outside any transaction."""
    supplier = Supplier.objects.filter(pk=supplier_id).first()
    if supplier is None:
        return CallbackReply(404, "unknown supplier")
    if len(body) > MAX_BODY_BYTES:
        return CallbackReply(413, "payload too large")
    try:
        connector = connector_for(supplier)
        result = connector.callback_verify(body=body, headers=headers)
    except CallbackRejectedError as error:
        logger.warning("callback of supplier %s rejected: %s", supplier_id, error)
        return CallbackReply(400, "rejected")
    except ApplicationError as error:
        logger.warning("callback of supplier %s cannot be read: %s", supplier_id, error.message)
        return CallbackReply(400, "rejected")
    attempt_id = (TopupAttempt.objects.filter(customer_order_no=result.customer_order_no, supplier_id=supplier.pk)
                  .values_list("pk", flat=True).first())
    if attempt_id is None:
        logger.warning("callback of supplier %s for an unknown order number %s", supplier_id,
                       result.customer_order_no)
        return CallbackReply(404, "unknown order")
    attempt_outcome_apply(attempt_id=attempt_id, answer=result.answer, via=Via.CALLBACK)
    return CallbackReply(200, result.reply)
