"""Bounded database connections per process: pools across fork, and per-thread connections closed with their thread.

Pools across fork: a child process builds its own and never uses, nor closes, its parent's.

Django keeps one psycopg pool per process (kameng/settings/base.py, DATABASE_POOL). A process that forks after its
pool opened (a Celery prefork worker whose parent touched the database) would hand the child a pool whose
background threads do not exist there and whose connections are the parent's sockets. The child forgets the pools
it inherited, so that its first query opens a pool of its own; the inherited ones are kept referenced, never
garbage-collected, because closing one of their connections would end the parent's session on the server.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

_inherited_pools: list[object] = []


def inherited_pools_forget() -> None:
    backend = sys.modules.get("django.db.backends.postgresql.base")
    if backend is None:  # no PostgreSQL connection was ever made in this process
        return
    pools = backend.DatabaseWrapper._connection_pools
    _inherited_pools.extend(pools.values())
    pools.clear()


class _CloseWhenThreadEnds:
    """Held in a thread-local slot beside the thread's connection: dropped, and so run, when the thread ends.

    A persistent connection lives in Django's per-thread DatabaseWrapper, which is a reference cycle: when its
    thread ends (granian retires idle threads) only the garbage collector, whenever it runs, would close it. This
    object is no part of any cycle, so it goes the moment the thread's locals do, and closes the connection then —
    unless the wrapper is shared with other threads (Django's live test server shares the test's connection).
    """

    def __init__(self, wrapper: BaseDatabaseWrapper) -> None:
        self.wrapper = weakref.ref(wrapper)
        self.raw_connection = wrapper.connection

    def __del__(self) -> None:
        wrapper = self.wrapper()
        if wrapper is not None and wrapper.allow_thread_sharing:
            return
        with contextlib.suppress(Exception):  # a finaliser must not raise; a broken connection is closed anyway
            self.raw_connection.close()


_thread_connections = threading.local()


def thread_connection_close_at_exit(*, sender: object, connection: BaseDatabaseWrapper, **_kwargs: object) -> None:
    """`connection_created` receiver: a persistent PostgreSQL connection (no pool) is closed when its thread ends.

    PostgreSQL only: it is where connections are a bounded resource (max_connections) and servers keep them open.
    """
    if connection.vendor == "postgresql" and getattr(connection, "pool", None) is None:
        setattr(_thread_connections, connection.alias, _CloseWhenThreadEnds(connection))
