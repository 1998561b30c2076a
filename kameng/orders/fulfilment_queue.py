"""Handing paid orders to the worker in batches: one `fulfil_orders` task for the orders committed together.

Every order fulfilled later is enqueued after its payment commits (`order_fulfilment_enqueue`, one call per order:
the checkout's group commit writes many orders in one transaction and calls it for each). A task per order would
cost the broker and the worker a message each; instead the ids go to this process's publisher thread, which sends
whatever has queued since its last send as one `fulfil_orders` task (at most `KAMENG_FULFIL_BATCH_MAX` ids): an
order alone is sent at once, a burst is sent in batches — a group commit for enqueues. The task fulfils its orders in
one transaction (`orders_fulfil`).

Nothing is lost that matters: an id still in the queue when the process dies (or whose send fails: broker down) is a
paid order the sweeper (`orders_redrive_stuck`) re-drives, as it does for any lost task. With eager tasks (tests,
the demo without a worker) each order is fulfilled inline, as before.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable

from django.conf import settings

logger = logging.getLogger(__name__)

_STOP = -1


class _Publisher:
    def __init__(self, batch_max: int) -> None:
        self.batch_max = batch_max
        self.queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="fulfilment-publisher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self.queue.get()
            if first == _STOP:
                return
            batch = [first]
            while len(batch) < self.batch_max:
                try:
                    order_id = self.queue.get_nowait()
                except queue.Empty:
                    break
                if order_id == _STOP:
                    stopping = True
                    break
                batch.append(order_id)
            _send(batch)

    def stop(self) -> None:
        self.queue.put(_STOP)
        self.thread.join()


def _send(order_ids: list[int]) -> None:
    from kameng.orders.tasks import fulfil_orders

    try:
        fulfil_orders.delay(order_ids)
    except Exception:  # a broker down must not fail a paid order: the sweeper picks them up
        logger.exception("could not enqueue the fulfilment of %d orders; the sweeper will", len(order_ids))


_publishers: dict[str, _Publisher] = {}
_lock = threading.Lock()


def _publisher() -> _Publisher:
    with _lock:
        publisher = _publishers.get("publisher")
        if publisher is None or not publisher.thread.is_alive():  # made after a fork, in the process that uses it
            publisher = _Publisher(int(getattr(settings, "KAMENG_FULFIL_BATCH_MAX", 50)))
            _publishers["publisher"] = publisher
        return publisher


def orders_fulfilment_enqueue(*, order_ids: Iterable[int]) -> None:
    """Hand paid orders fulfilled later to the worker, batched with whatever else this process is handing over
    (after commit). Eager tasks: fulfilled here, one by one."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        from kameng.orders.tasks import fulfil_order

        for order_id in order_ids:
            try:
                fulfil_order.delay(order_id)
            except Exception:
                logger.exception("could not fulfil order %s inline; the sweeper will", order_id)
        return
    publisher = _publisher()
    for order_id in order_ids:
        publisher.queue.put(int(order_id))


def fulfilment_publisher_flush() -> None:
    """Send what is queued and stop this process's publisher (tests, a process shutting down); the next enqueue
    starts a new one."""
    with _lock:
        publisher = _publishers.pop("publisher", None)
    if publisher is not None:
        publisher.stop()
