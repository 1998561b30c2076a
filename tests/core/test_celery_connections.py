"""A worker's task thread keeps its database connection from task to task (Celery's Django fixup would close it
around every task), and still drops one that is past CONN_MAX_AGE; eager tasks leave their caller's alone."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.db import connection

from kameng.celery import app
from tests.concurrency.threads import requires_postgresql

# On PostgreSQL, as the workers run: SQLite's in-memory test database is never really closed.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    requires_postgresql()


class _Task:
    """The sender of a task's signals: what the receivers read of it."""

    def __init__(self, *, is_eager: bool) -> None:
        self.request = SimpleNamespace(is_eager=is_eager)


def _task(*, is_eager: bool) -> _Task:
    return _Task(is_eager=is_eager)


def _run_task_signals(sender: _Task, fixup: DjangoWorkerFixup) -> None:
    """What a worker does around one task: the signals' receivers (ours) and the fixup's own close."""
    task_prerun.send(sender=sender)
    fixup.close_database()
    task_postrun.send(sender=sender)
    fixup.close_database()


def test_a_workers_connection_is_kept_from_task_to_task() -> None:
    fixup = DjangoWorkerFixup(app)
    assert fixup.db_reuse_max == 1000  # CELERY_DB_REUSE_MAX: otherwise the fixup closes it around every task
    connection.ensure_connection()
    opened = connection.connection
    for _ in range(20):
        _run_task_signals(_task(is_eager=False), fixup)
        connection.ensure_connection()
    assert connection.connection is opened


def test_a_connection_past_its_max_age_is_closed_after_a_task() -> None:
    connection.ensure_connection()
    connection.close_at = time.monotonic() - 1
    task_postrun.send(sender=_task(is_eager=False))
    assert connection.connection is None


def test_an_eager_tasks_connection_is_left_alone() -> None:
    connection.ensure_connection()
    opened = connection.connection
    connection.close_at = time.monotonic() - 1
    task_postrun.send(sender=_task(is_eager=True))
    assert connection.connection is opened
