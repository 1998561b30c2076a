"""Task plumbing: enqueue background jobs only after the surrounding transaction commits."""

from __future__ import annotations

from typing import Any

from celery import Task
from django.db import transaction


def enqueue_after_commit(task: Task, *args: Any, **kwargs: Any) -> None:
    """Send `task` once the current transaction commits (at once when there is none).

    Tasks take ids and are idempotent; if the broker is down the periodic sweepers re-drive the work, because the
    row's status column — not the queue — is the record of what is still to do.
    """
    transaction.on_commit(lambda: task.apply_async(args=args, kwargs=kwargs))
