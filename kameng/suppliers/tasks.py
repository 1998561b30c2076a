"""Direct top-up tasks. They take ids, are idempotent (an attempt is claimed by a conditional UPDATE before any
call), and assume they may run twice."""

from __future__ import annotations

from celery import shared_task

from kameng.suppliers.dispatch import attempts_submit, topup_attempts_sweep


@shared_task(name="kameng.suppliers.tasks.submit_topups", acks_late=True)
def submit_topups(attempt_ids: list[int]) -> None:
    """Hand RECORDED attempts to this worker's dispatcher (returns once they are in flight; kameng.suppliers.dispatch
    says why, and the sweeper takes any lost with the process)."""
    attempts_submit(attempt_ids=[int(attempt_id) for attempt_id in attempt_ids])


@shared_task(name="kameng.suppliers.tasks.sweep_topups")
def sweep_topups() -> int:
    """Periodic: re-drive lost submits, query attempts due for it (kameng.celery beat schedule)."""
    return topup_attempts_sweep()
