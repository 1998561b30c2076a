"""A server process holds a bounded number of PostgreSQL connections however many threads come and go.

granian retires a request thread that stayed idle and starts another when load returns. Every retired thread left
its connection open (a DatabaseWrapper is a reference cycle: only the garbage collector, whenever it runs, closed
it) and the process crept towards PostgreSQL's max_connections. Run with the default settings (a connection per
thread, closed with it) and with DATABASE_POOL=1 (a pool per process) the same test holds.
bench/connections.py measures the same thing against a real granian.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest
from django.db import close_old_connections, connection

from kameng.catalog.models import Sku
from tests.concurrency.threads import requires_postgresql

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 4
ROUNDS = 3


@pytest.fixture(autouse=True)
def _postgresql_without_the_garbage_collector() -> Iterator[None]:
    # The collector would close an abandoned connection at a moment of its choosing: the test must not depend on it.
    requires_postgresql()
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def _backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def _request(barrier: threading.Barrier) -> None:
    """What a request does with the database: use it, then Django's request_finished closes old connections."""
    barrier.wait(timeout=30)
    Sku.objects.count()
    close_old_connections()


def test_threads_that_end_leave_no_connection_behind() -> None:
    before = _backends()

    for _round in range(ROUNDS):  # a burst on fresh threads, which then end (a retired server thread)
        barrier = threading.Barrier(THREADS)
        threads = [threading.Thread(target=_request, args=(barrier,)) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert _backends() - before <= THREADS

