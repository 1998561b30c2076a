"""Background jobs for suppliers: direct top-up submits and sweeps, ratings, settlement sweeps, price/stock sync,
restock requests. Tasks take ids, are idempotent (a top-up attempt is claimed by a conditional UPDATE before any
call) and assume they may run twice."""

from __future__ import annotations

from celery import shared_task

from kameng.suppliers.dispatch import attempts_query, attempts_submit, topup_attempts_sweep
from kameng.suppliers.ratings import ratings_recompute
from kameng.suppliers.restock import restock_check
from kameng.suppliers.restock_notify import restock_email_send, restock_webhook_deliver, restock_webhooks_due
from kameng.suppliers.settlement import settlements_sweep
from kameng.suppliers.sync import supplier_sync_pull, suppliers_to_sync


@shared_task(name="kameng.suppliers.tasks.sync_all_suppliers")
def sync_all_suppliers() -> int:
    """One task per supplier, so a slow or dead upstream holds up nobody else."""
    supplier_ids = suppliers_to_sync()
    for supplier_id in supplier_ids:
        sync_supplier.delay(supplier_id)
    return len(supplier_ids)


@shared_task(name="kameng.suppliers.tasks.sync_supplier")
def sync_supplier(supplier_id: int) -> int | None:
    result = supplier_sync_pull(supplier_id=supplier_id)
    return None if result is None else result.updated


@shared_task(name="kameng.suppliers.tasks.check_restock")
def check_restock() -> int:
    return len(restock_check())


@shared_task(name="kameng.suppliers.tasks.check_restock_skus")
def check_restock_skus(sku_ids: list[int]) -> int:
    return len(restock_check(sku_ids=sku_ids))


@shared_task(name="kameng.suppliers.tasks.notify_restock")
def notify_restock(request_id: int) -> None:
    restock_webhook_deliver(request_id=request_id)
    restock_email_send(request_id=request_id)


@shared_task(name="kameng.suppliers.tasks.deliver_restock_webhook")
def deliver_restock_webhook(request_id: int) -> str:
    return restock_webhook_deliver(request_id=request_id)


@shared_task(name="kameng.suppliers.tasks.redrive_restock_webhooks")
def redrive_restock_webhooks() -> int:
    due = restock_webhooks_due()
    for request_id in due:
        deliver_restock_webhook.delay(request_id)
    return len(due)


@shared_task(name="kameng.suppliers.tasks.recompute_ratings")
def recompute_ratings() -> int:
    """Rate every supplier for today (kameng/suppliers/ratings.py); a second run the same day replaces the day's
    snapshots, it does not add to them."""
    return ratings_recompute()


@shared_task(name="kameng.suppliers.tasks.settle_missed_orders")
def settle_missed_orders() -> int:
    """Settle recent delivered or refunded orders the aftercare listener missed."""
    return settlements_sweep()


@shared_task(name="kameng.suppliers.tasks.submit_topups", acks_late=True)
def submit_topups(attempt_ids: list[int]) -> None:
    """Hand RECORDED attempts to this worker's dispatcher (returns once they are in flight; kameng.suppliers.dispatch
    says why, and the sweeper takes any lost with the process)."""
    attempts_submit(attempt_ids=[int(attempt_id) for attempt_id in attempt_ids])


@shared_task(name="kameng.suppliers.tasks.query_topups", acks_late=True)
def query_topups(attempt_ids: list[int]) -> None:
    """Hand attempts a callback made due to this worker's dispatcher for a query (not due any more, or taken by
    another worker: nothing happens)."""
    attempts_query(attempt_ids=[int(attempt_id) for attempt_id in attempt_ids])


@shared_task(name="kameng.suppliers.tasks.sweep_topups")
def sweep_topups() -> int:
    """Periodic: re-drive lost submits, query attempts due for it (kameng.celery beat schedule)."""
    return topup_attempts_sweep()
