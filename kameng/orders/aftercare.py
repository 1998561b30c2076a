"""Aftercare: telling the apps that follow what buyers receive and get back once an order's money settles.

Two events matter to them: an order was delivered (the buyer has the goods, the money is the platform's) and an
order was refunded in part or in whole. Membership growth, points and the delivery e-mail listen; orders does not
know them. They are the dotted paths in `KAMENG_ORDER_AFTERCARE` (empty: nothing is sent and nothing costs), each a
callable `listener(*, order_ids: list[int], event: str) -> None`.

The order state machine registers every move into delivered, refunded or partially refunded here
(`kameng.orders.state.transition`), and the checkout writer a whole batch of orders delivered at checkout at once;
after the transaction commits, one task per registration runs every listener. Delivery is at least once: a
listener must be idempotent — read the order's current state and bring its own records in line with it, never add
a fixed delta per call.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class AftercareEvent(enum.StrEnum):
    DELIVERED = "delivered"
    REFUNDED = "refunded"  # in part or in whole


class AftercareListener(Protocol):
    def __call__(self, *, order_ids: list[int], event: str) -> None: ...


_loaded: dict[tuple[str, ...], tuple[AftercareListener, ...]] = {}


def aftercare_listeners() -> tuple[AftercareListener, ...]:
    paths = tuple(settings.KAMENG_ORDER_AFTERCARE)
    listeners = _loaded.get(paths)
    if listeners is None:
        listeners = tuple(import_string(path) for path in paths)
        _loaded[paths] = listeners
    return listeners


def order_aftercare(*, order_ids: Iterable[int], event: AftercareEvent) -> None:
    """Tell the listeners about these orders once the current transaction commits: one task for the ids given
    (nothing if the transaction rolls back, and nothing at all when no listener is configured)."""
    if not settings.KAMENG_ORDER_AFTERCARE:
        return
    ids = sorted(set(order_ids))
    if ids:
        transaction.on_commit(functools.partial(_send, ids, event))


def _send(order_ids: list[int], event: AftercareEvent) -> None:
    from kameng.orders.tasks import order_aftercare_run

    if settings.CELERY_TASK_ALWAYS_EAGER:
        # Run in place: Celery's eager apply (task request, tracer, result, log line) costs ~0.6 ms of CPU a call,
        # and this runs in the checkout writer's thread after every batch (the demo, the tests, the benchmark).
        try:
            aftercare_run(order_ids=order_ids, event=str(event))
        except Exception:  # as the eager task would end: logged, the committed orders stand
            logger.exception("aftercare (%s) of %d orders failed", event, len(order_ids))
        return
    try:
        order_aftercare_run.delay(order_ids, str(event))
    except Exception:  # a broker down must not fail a committed order; the listeners' own sweeps catch up
        logger.exception("could not enqueue aftercare (%s) of %d orders", event, len(order_ids))


def aftercare_run(*, order_ids: list[int], event: str,
                  listeners: Callable[[], tuple[AftercareListener, ...]] = aftercare_listeners) -> None:
    """Run every listener; one failing does not keep the others from running, and the error is raised at the end
    (the task retries, and idempotent listeners make the rerun harmless)."""
    failed: BaseException | None = None
    for listener in listeners():
        try:
            listener(order_ids=order_ids, event=event)
        except Exception as error:
            logger.exception("aftercare listener %r failed for %d orders (%s)", listener, len(order_ids), event)
            failed = error
    if failed is not None:
        raise failed

