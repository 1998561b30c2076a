"""`manage.py encryption_rotate`: re-encrypt every value that is not under the active key id.

Covers every `EncryptedTextField` of every installed model (phone numbers, merchant keys, …) and the raw
ciphertext columns that are encrypted outside such a field (card-key secrets). Rows are read in primary-key
batches straight from the table — the ciphertext's key id is in its header, so nothing is decrypted for rows that
are already current — and each rewrite is guarded by the old ciphertext (`WHERE pk = … AND col = old`), so a value
changed meanwhile by the application is left alone rather than overwritten. Running it again is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, models, transaction

from kameng.core.crypto import DecryptionError, Keyring, keyring
from kameng.core.fields import EncryptedTextField
from kameng.inventory.models import SECRET_CONTEXT, CardKey


def _column_name(model_field: Any) -> str:
    column = model_field.column
    if not column:
        raise CommandError(f"{model_field} has no database column")
    return str(column)


@dataclass(frozen=True)
class EncryptedColumn:
    model: type[models.Model]
    column: str
    context: str

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.column}"

    @property
    def table(self) -> str:
        return connection.ops.quote_name(self.model._meta.db_table)

    @property
    def pk_column(self) -> str:
        pk = self.model._meta.pk
        assert pk is not None
        return connection.ops.quote_name(_column_name(pk))

    @property
    def quoted_column(self) -> str:
        return connection.ops.quote_name(self.column)


@dataclass
class RotationCount:
    scanned: int = 0
    rotated: int = 0
    current: int = 0
    changed_meanwhile: int = 0
    failed_ids: list[Any] = field(default_factory=list)


def encrypted_columns() -> list[EncryptedColumn]:
    """Every column holding keyring ciphertext: the EncryptedTextFields, plus the raw ones listed here."""
    columns = [EncryptedColumn(CardKey, _column_name(CardKey._meta.get_field("secret_ciphertext")),
                               SECRET_CONTEXT)]
    for model in apps.get_models():
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, EncryptedTextField):
                columns.append(EncryptedColumn(model, _column_name(model_field), model_field._context()))
    return columns


def _batches(column: EncryptedColumn, batch_size: int) -> Iterator[list[tuple[Any, bytes]]]:
    pk, value = column.pk_column, column.quoted_column
    sql = (
        f"SELECT {pk}, {value} FROM {column.table} "  # noqa: S608 - names come from the models, not from input
        f"WHERE {pk} > %s AND {value} IS NOT NULL ORDER BY {pk} LIMIT %s"
    )
    is_integer_pk = column.model._meta.pk.get_internal_type().endswith(("AutoField", "IntegerField"))
    last: Any = 0 if is_integer_pk else ""
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [last, batch_size])
            rows = [(row[0], bytes(row[1])) for row in cursor.fetchall()]
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def column_rotate(column: EncryptedColumn, *, ring: Keyring, batch_size: int, dry_run: bool) -> RotationCount:
    count = RotationCount()
    context = column.context.encode()
    update_sql = (
        f"UPDATE {column.table} SET {column.quoted_column} = %s "  # noqa: S608 - names come from the models
        f"WHERE {column.pk_column} = %s AND {column.quoted_column} = %s"
    )
    for rows in _batches(column, batch_size):
        count.scanned += len(rows)
        rewrites: list[tuple[bytes, Any, bytes]] = []
        for pk, token in rows:
            if len(token) >= 2 and Keyring.key_id_of(token) == ring.active_id:
                count.current += 1
                continue
            try:
                plaintext = ring.decrypt(token, context=context)
            except DecryptionError:
                count.failed_ids.append(pk)
                continue
            rewrites.append((ring.encrypt(plaintext, context=context), pk, token))
        if dry_run or not rewrites:
            count.rotated += len(rewrites)
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            for new_token, pk, old_token in rewrites:
                cursor.execute(update_sql, [new_token, pk, old_token])
                if cursor.rowcount == 1:
                    count.rotated += 1
                else:
                    count.changed_meanwhile += 1
    return count


class Command(BaseCommand):
    help = ("Re-encrypt every encrypted value whose key id is not the active one "
            "(the first KAMENG_ENCRYPTION_KEYS entry).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=1000, help="rows read and rewritten per transaction")
        parser.add_argument("--dry-run", action="store_true", help="count what would be re-encrypted, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        ring = keyring()
        verb = "would re-encrypt" if options["dry_run"] else "re-encrypted"
        self.stdout.write(f"active key id: {ring.active_id} (configured: {', '.join(ring.keys)})")
        total_rotated = 0
        failures: list[str] = []
        for column in encrypted_columns():
            count = column_rotate(column, ring=ring, batch_size=batch_size, dry_run=options["dry_run"])
            total_rotated += count.rotated
            line = (f"{column.label}: {count.scanned} scanned, {count.current} already current, "
                    f"{count.rotated} {verb}")
            if count.changed_meanwhile:
                line += f", {count.changed_meanwhile} changed meanwhile (left as written by the application)"
            if count.failed_ids:
                line += f", {len(count.failed_ids)} FAILED to decrypt"
                shown = ", ".join(str(pk) for pk in count.failed_ids[:10])
                failures.append(f"{column.label}: ids {shown}{' …' if len(count.failed_ids) > 10 else ''}")
            self.stdout.write(line)
        if failures:
            for failure in failures:
                self.stderr.write(failure)
            raise CommandError(
                "some values could not be decrypted with the configured keys (a missing old key id, or damaged "
                "data); they were left unchanged"
            )
        self.stdout.write(self.style.SUCCESS(f"done: {total_rotated} value(s) {verb} under key id {ring.active_id}"))
