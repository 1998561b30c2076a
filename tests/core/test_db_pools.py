"""A forked child forgets the connection pools of its parent (and keeps them from being garbage-collected)."""

from __future__ import annotations

import os

from django.db.backends.postgresql.base import DatabaseWrapper

from kameng.core import db


def test_a_forked_child_opens_its_own_pool() -> None:
    pools: dict[str, object] = DatabaseWrapper._connection_pools  # type: ignore[attr-defined]  # Django-private
    saved = dict(pools)
    parents = object()
    pools["parent-alias"] = parents
    read, write = os.pipe()
    try:
        child = os.fork()
        if child == 0:  # the child: what is left of its parent's pools, and are they still referenced?
            os.write(write, b"%d %d" % (len(pools), parents in db._inherited_pools))
            os._exit(0)
        os.waitpid(child, 0)
        answer = os.read(read, 64).decode()
    finally:
        os.close(read)
        os.close(write)
        pools.clear()
        pools.update(saved)

    assert answer == "0 1"

