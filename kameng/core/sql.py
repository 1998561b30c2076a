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


class MessageCursor:
    """A cursor of a `OneMessage`: `execute` before the message goes only records the statement; once it has gone,
    `fetchone`/`fetchall`/`rowcount` give what the server answered to it, and a further `execute` runs at once on a
    cursor of its own (in whatever transaction the connection is in)."""

    def __init__(self) -> None:
        self.statement: tuple[str, Any] | None = None
        self._rows: list[tuple[Any, ...]] = []
        self._rowcount = -1
        self._sent = False
        self._final = False
        self._cursor: Any = None

    def execute(self, sql: str, params: Any = None) -> None:
        if not self._sent:
            if self.statement is not None:
                raise RuntimeError("a message cursor holds one statement until its message has gone")
            self.statement = (sql, params)
            return
        if self._final:
            raise RuntimeError("the message committed its transaction: no statement can join it any more")
        if self._cursor is None:
            self._cursor = connection.cursor()
        self._cursor.execute(sql, params)

    def _answered(self, rows: list[tuple[Any, ...]], rowcount: int, *, final: bool) -> None:
        self._rows, self._rowcount, self._sent, self._final = rows, rowcount, True, final

    @property
    def rowcount(self) -> int:
        return self._rowcount if self._cursor is None else int(self._cursor.rowcount)

    def fetchall(self) -> list[tuple[Any, ...]]:
        if self._cursor is not None:
            return list(self._cursor.fetchall())
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._cursor is not None:
            row = self._cursor.fetchone()
            return None if row is None else tuple(row)
        return self._rows.pop(0) if self._rows else None

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None

    def __enter__(self) -> MessageCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OneMessage:
    """PostgreSQL: statements rendered client-side (psycopg's `ClientCursor`, its own quoting) and sent to the server
    together, as one simple-query message, then answered together — one wait for the server, and so one wait for
    the GIL, instead of one per statement (the checkout writer: bench/README.md).

    Take a cursor per statement (`cursor()`), execute on each, then `send()`: every cursor then holds its answer.
    The message may open a transaction (`send(begin=True)`, the connection in autocommit as Django leaves it
    outside `atomic`): the caller then ends it itself, COMMIT or ROLLBACK, on every path — or the message ends it
    with COMMIT (`commit=True`; its cursors then refuse further statements). An error of any statement is raised by
    `send()` as Django's error; the server skips the statements after it (a COMMIT too), and a transaction the
    message opened is left failed (roll it back).
    """

    def __init__(self) -> None:
        self._cursors: list[MessageCursor] = []

    def cursor(self) -> MessageCursor:
        cursor = MessageCursor()
        self._cursors.append(cursor)
        return cursor

    def send(self, *, begin: bool = False, commit: bool = False) -> None:
        import psycopg

        connection.ensure_connection()
        with connection.wrap_database_errors:
            client = psycopg.ClientCursor(connection.connection)
            statements = [client.mogrify(*cursor.statement) for cursor in self._cursors if cursor.statement is not None]
        # In Django's own wrapper: its execute wrappers and query log see the message as they see any statement.
        raw: Any = client  # the stubs type these as taking Django's wrapper; they take the driver's cursor
        wrapped = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
        with wrapped:
            wrapped.execute(";\n".join((["BEGIN"] if begin else []) + statements + (["COMMIT"] if commit else [])))
            with connection.wrap_database_errors:
                if begin:
                    client.nextset()
                for cursor in self._cursors:
                    if cursor.statement is None:
                        cursor._answered([], -1, final=commit)
                        continue
                    cursor._answered(client.fetchall() if client.description is not None else [], client.rowcount,
                                     final=commit)
                    client.nextset()
