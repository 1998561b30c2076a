"""Helpers for the few statements written in plain SQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection


def json_rows(rows: Iterable[dict[str, Any]]) -> str:
    """Many rows as one JSON parameter, for `json_to_recordset(%s::json) AS t(column type, …)` on PostgreSQL.

    One text parameter costs psycopg next to nothing to send, where a Python list sent as an array is adapted
    element by element. Send Decimals as strings: PostgreSQL reads them into `numeric` exactly.
    """
    return json.dumps(list(rows), ensure_ascii=False, separators=(",", ":"))


@contextmanager
def statements_pipelined() -> Iterator[None]:
    """PostgreSQL: send the statements executed inside without waiting for their results (psycopg's pipeline mode),
    and wait once, when the block ends, for all of them.

    For statements that do not need each other's results, in the caller's transaction. Keep each cursor open and
    read it after the block: a read inside it waits for the server there and then (correct, but a wait more). An
    error of any statement is raised when the block ends, as Django's error, and the statements after the failed
    one are skipped by the server (the transaction is failed: the caller's `atomic` rolls it back). Elsewhere
    (SQLite, MariaDB, a libpq without pipeline mode) the statements run one by one as usual.
    """
    if connection.vendor != "postgresql":
        yield
        return
    import psycopg

    if not psycopg.Pipeline.is_supported():
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield
