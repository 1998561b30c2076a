"""Helpers for the few statements written in plain SQL."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def json_rows(rows: Iterable[dict[str, Any]]) -> str:
    """Many rows as one JSON parameter, for `json_to_recordset(%s::json) AS t(column type, …)` on PostgreSQL.

    One text parameter costs psycopg next to nothing to send, where a Python list sent as an array is adapted
    element by element. Send Decimals as strings: PostgreSQL reads them into `numeric` exactly.
    """
    return json.dumps(list(rows), ensure_ascii=False, separators=(",", ":"))
