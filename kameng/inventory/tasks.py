"""Background jobs for stock. Tasks take ids, are idempotent, and assume they may run twice."""

from __future__ import annotations

from celery import shared_task

from kameng.inventory.batches import card_key_batch_run, card_key_batches_redrive


@shared_task(name="kameng.inventory.tasks.import_card_key_batch", acks_late=True)
def import_card_key_batch(batch_id: int) -> None:
    """Import a large batch staged by the admin's import page; a finished batch is not imported again."""
    card_key_batch_run(batch_id=batch_id)


@shared_task(name="kameng.inventory.tasks.redrive_queued_imports")
def redrive_queued_imports() -> int:
    return card_key_batches_redrive()
