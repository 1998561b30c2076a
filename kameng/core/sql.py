"""Helpers for the few statements written in plain SQL: many rows sent as one JSON parameter, and the set-based
INSERT and UPDATE of model rows built on it (PostgreSQL; the callers keep the ORM's path for the other databases)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection
from django.db.models import DateField, DecimalField, Field, JSONField, Model
from django.utils import timezone


def json_rows(rows: Iterable[dict[str, Any]]) -> str:
    """Many rows as one JSON parameter, for `json_to_recordset(%s::json) AS t(column type, …)` on PostgreSQL.

    One text parameter costs psycopg next to nothing to send, where a Python list sent as an array is adapted
    element by element. Send Decimals as strings: PostgreSQL reads them into `numeric` exactly.
    """
    return json.dumps(list(rows), ensure_ascii=False, separators=(",", ":"))


def _to_json(field: Field[Any, Any]) -> Callable[[Any], object] | None:
    """How a value of this field goes into the JSON parameter (None: as it is)."""
    if isinstance(field, JSONField):  # sent as text, cast to the column's type: the field's own encoder decides
        encoder = field.encoder
        return lambda value: None if value is None else json.dumps(value, cls=encoder, ensure_ascii=False)
    if isinstance(field, DateField):
        return lambda value: None if value is None else value.isoformat()
    if isinstance(field, DecimalField):
        return lambda value: None if value is None else str(value)
    return None


def _json_values(columns: Sequence[Field[Any, Any]], rows: Sequence[Model], *, with_id: bool = False) -> str:
    """The rows' values of these columns as one JSON parameter (keys: the column names)."""
    plain = [(str(column.column), column.attname) for column in columns if _to_json(column) is None]
    converted = [(str(column.column), column.attname, convert) for column in columns
                 if (convert := _to_json(column)) is not None]
    values = []
    for row in rows:
        value = {name: getattr(row, attname) for name, attname in plain}
        for name, attname, convert in converted:
            value[name] = convert(getattr(row, attname))
        if with_id:
            value["id"] = row.pk
        values.append(value)
    return json_rows(values)


def _columns(model: type[Model], names: Sequence[str] | None) -> list[Field[Any, Any]]:
    meta = model._meta
    if names is None:
        return [field for field in meta.concrete_fields if not field.primary_key]
    return [field for name in names if isinstance(field := meta.get_field(name), Field)]


def _recordset(columns: Sequence[Field[Any, Any]]) -> tuple[str, str]:
    """The recordset's column list (`name type, …`: a JSON field as text) and the SELECT of its values, cast back."""
    quote = connection.ops.quote_name
    declared, selected = [], []
    for column in columns:
        name = quote(str(column.column))
        if isinstance(column, JSONField):
            declared.append(f"{name} text")
            selected.append(f"v.{name}::{column.db_type(connection)}")
        else:
            declared.append(f"{name} {column.db_type(connection)}")
            selected.append(f"v.{name}")
    return ", ".join(declared), ", ".join(selected)


def rows_insert(model: type[Model], rows: Sequence[Model], *, key: str | None = None) -> None:
    """Insert these unsaved rows in one statement on PostgreSQL (INSERT … SELECT from the rows sent as one JSON
    parameter; Django's `bulk_create` prepares every value of every row, which costs more CPU than the insert).
    Every concrete field but the id is written as it is on the instance, `auto_now`/`auto_now_add` dates set to
    one `now`. With `key` (a unique field) each row's id is set from what the insert returns, matched by it."""
    if not rows:
        return
    columns = _columns(model, None)
    now = timezone.now()
    for column in columns:
        if isinstance(column, DateField) and (column.auto_now or column.auto_now_add):
            for row in rows:
                if column.auto_now or getattr(row, column.attname) is None:
                    setattr(row, column.attname, now)
    quote = connection.ops.quote_name
    declared, selected = _recordset(columns)
    names = ", ".join(quote(str(column.column)) for column in columns)
    key_field = _columns(model, [key])[0] if key is not None else None
    returning = f" RETURNING id, {quote(str(key_field.column))}" if key_field is not None else ""
    sql = (f"INSERT INTO {quote(model._meta.db_table)} ({names}) SELECT {selected} "  # noqa: S608 - the model's names
           f"FROM json_to_recordset(%s::json) AS v({declared}){returning}")
    values = _json_values(columns, rows)
    with connection.cursor() as cursor:
        cursor.execute(sql, [values])
        if cursor.rowcount != len(rows):
            raise RuntimeError(f"{model._meta.db_table}: {cursor.rowcount} of {len(rows)} rows inserted")
        if key_field is None:
            return
        ids = {str(value): row_id for row_id, value in cursor.fetchall()}
    for row in rows:
        row.pk = ids[str(getattr(row, key_field.attname))]
        row._state.adding = False


def rows_update(model: type[Model], rows: Sequence[Model], fields: Sequence[str]) -> None:
    """Write these fields of these rows in one statement: on PostgreSQL one UPDATE joined to the rows sent as one
    JSON parameter (Django's `bulk_update` builds a CASE per field and row, which costs more CPU than the
    writes), elsewhere `bulk_update`. Every row must exist."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(rows, fields)
        return
    columns = _columns(model, fields)
    quote = connection.ops.quote_name
    declared, _ = _recordset(columns)
    assignments = ", ".join(
        f"{quote(str(column.column))} = v.{quote(str(column.column))}"
        + (f"::{column.db_type(connection)}" if isinstance(column, JSONField) else "")
        for column in columns)
    sql = (f"UPDATE {quote(model._meta.db_table)} AS t SET {assignments} "  # noqa: S608 - the model's names
           f"FROM json_to_recordset(%s::json) AS v(id bigint, {declared}) WHERE t.id = v.id")
    values = _json_values(columns, rows, with_id=True)
    with connection.cursor() as cursor:
        cursor.execute(sql, [values])
        if cursor.rowcount != len(rows):
            raise RuntimeError(f"{model._meta.db_table}: {cursor.rowcount} of {len(rows)} rows updated")

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
