"""Database connection pools across fork: a child process builds its own and never uses, nor closes, its parent's.

Django keeps one psycopg pool per process (kameng/settings/base.py, DATABASE_POOL). A process that forks after its
pool opened (a Celery prefork worker whose parent touched the database) would hand the child a pool whose
background threads do not exist there and whose connections are the parent's sockets. The child forgets the pools
it inherited, so that its first query opens a pool of its own; the inherited ones are kept referenced, never
garbage-collected, because closing one of their connections would end the parent's session on the server.
"""

from __future__ import annotations

import sys

_inherited_pools: list[object] = []


def inherited_pools_forget() -> None:
    backend = sys.modules.get("django.db.backends.postgresql.base")
    if backend is None:  # no PostgreSQL connection was ever made in this process
        return
    pools = backend.DatabaseWrapper._connection_pools
    _inherited_pools.extend(pools.values())
    pools.clear()
