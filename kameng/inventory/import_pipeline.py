"""How an import's chunks are prepared and committed (批次导入的流水线).

A thread prepares the chunks in input order: fingerprint every line, drop repeats of an earlier line, AES-GCM
encrypt the rest. Writers take prepared chunks and store them (`import_store`): on PostgreSQL outside a transaction
two writers, each on its own connection, so that the database works on two chunks while the next is prepared;
otherwise one writer in the caller's thread (SQLite has one writer anyway; inside a caller's transaction other
connections could not see the batch).

Each chunk is one transaction that stores its keys *and* records itself on the batch: its number in
`committed_chunks`, its lines in `processed_lines`, its counts. The progress bar only ever shows committed work,
and a batch whose worker died resumes with the chunks not yet recorded (chunks may commit out of order with two
writers). Before recording, the chunk locks the batch row and checks that no other worker recorded the same chunk
(a redelivered task running beside the first): if one did, the chunk rolls back and this run stops.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from kameng.core.crypto import Keyring, keyring
from kameng.inventory.import_store import KeyDefaults, rows_store
from kameng.inventory.models import SECRET_CONTEXT, CardKeyBatch, ImportStatus

CHUNK_SIZE = 10_000
WRITERS = 2  # PostgreSQL writers: two cores' worth of database work per import, no more
PREPARED_AHEAD = 2  # chunks the preparing thread may run ahead of the writers
FINGERPRINT_CONTEXT = b"inventory.cardkey.fingerprint"


@dataclass(frozen=True)
class PreparedChunk:
    number: int
    lines: int  # valid input lines this chunk covers
    repeats: int  # lines repeating an earlier line of the same input (refused as duplicates)
    rows: list[tuple[bytes, bytes]]  # (fingerprint, ciphertext) of the new secrets


def chunk_count(lines: int, size: int) -> int:
    return -(-lines // size)


def _fingerprinter(ring: Keyring) -> Callable[[bytes], bytes]:
    """`ring.fingerprint(value, context=FINGERPRINT_CONTEXT)`, from a copy of an HMAC already keyed and fed the
    context: the same digest for a third less CPU, which a million lines notice."""
    keyed = hmac.new(ring.blind_index_key, FINGERPRINT_CONTEXT + b"\x00", hashlib.sha256)
    fresh = keyed.copy

    def fingerprint_of(value: bytes) -> bytes:
        digest = fresh()
        digest.update(value)
        return digest.digest()

    return fingerprint_of


def _prepared_chunks(secrets: Iterable[str], *, size: int, skip: frozenset[int], ring: Keyring
                     ) -> Iterator[PreparedChunk]:
    fingerprint_of = _fingerprinter(ring)
    secret_context = SECRET_CONTEXT.encode()
    seen: set[bytes] = set()
    lines = iter(secrets)
    for number in itertools.count():
        chunk = list(itertools.islice(lines, size))
        if not chunk:
            return
        if number in skip:
            # Committed by an earlier run: only remembered, so that a later repeat of one of its lines is refused.
            seen.update(fingerprint_of(secret.encode()) for secret in chunk)
            continue
        marks: list[bytes] = []
        plaintexts: list[bytes] = []
        for secret in chunk:
            plaintext = secret.encode()
            mark = fingerprint_of(plaintext)
            if mark not in seen:
                seen.add(mark)
                marks.append(mark)
                plaintexts.append(plaintext)
        tokens = ring.encrypt_many(plaintexts, context=secret_context)
        yield PreparedChunk(number=number, lines=len(chunk), repeats=len(chunk) - len(marks),
                            rows=list(zip(marks, tokens, strict=True)))


class _PreparedAhead:
    """Runs the chunk generator in a thread, at most `PREPARED_AHEAD` chunks ahead; writers call `take()`.

    Hashing and encryption hold the GIL, but writers spend most of a chunk waiting on the database, which
    releases it: the next chunk is ready by the time a writer wants it.
    """

    _END = ("end", None)

    def __init__(self, source: Iterator[PreparedChunk]) -> None:
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=PREPARED_AHEAD)
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name="card-key-import-prepare",
                                        daemon=True)
        self._thread.start()

    def _put(self, item: tuple[str, Any]) -> None:
        while not self.stopped.is_set():
            try:
                self._queue.put(item, timeout=0.2)
            except queue.Full:
                continue
            return

    def _run(self, source: Iterator[PreparedChunk]) -> None:
        try:
            for chunk in source:
                self._put(("chunk", chunk))
                if self.stopped.is_set():
                    return
        except BaseException as error:  # handed to a writer, which raises it
            self._put(("error", error))
            return
        self._put(self._END)

    def take(self) -> PreparedChunk | None:
        """The next chunk, or None when there is none left (or the run stopped)."""
        while not self.stopped.is_set():
            try:
                kind, value = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if kind == "end":
                self._queue.put(self._END)  # for the other writers
                return None
            if kind == "error":
                raise value
            return value
        return None

    def close(self) -> None:
        self.stopped.set()
        self._thread.join()


class BatchMovedOnError(Exception):
    """Another worker recorded a chunk of this batch first: it carries on, this run stops."""


def _chunk_commit(batch_id: int, defaults: KeyDefaults, chunk: PreparedChunk, size: int) -> None:
    now = timezone.now()
    is_postgresql = connection.vendor == "postgresql"
    is_own_transaction = not connection.in_atomic_block
    with transaction.atomic():
        if is_postgresql:
            with connection.cursor() as cursor:
                # Keys and their record on the batch commit together, so a crash loses whole chunks at most, which
                # a resume redoes: no reason to wait for the disk at every chunk.
                cursor.execute("SET LOCAL synchronous_commit = off")
        result = rows_store(defaults=defaults, rows=chunk.rows, now=now)
        if is_postgresql and is_own_transaction:  # inside a caller's transaction it would outlive this chunk
            with connection.cursor() as cursor:
                # The foreign-key checks of the new rows now, before the batch row is locked, not at COMMIT with it.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # This lock also stands for a foreign key the keys' batch column does not have (models.CardKey.batch): the
        # batch row exists when the chunk's keys commit, and cannot be deleted before. NO KEY UPDATE, not FOR
        # UPDATE: that keeps a DELETE out just as well, and does not wait for key-share locks on the row.
        no_key = connection.features.has_select_for_no_key_update
        state = (CardKeyBatch.objects.select_for_update(no_key=no_key).filter(pk=batch_id)
                 .values_list("committed_chunks", flat=True).get())
        done = list(state.get("done", [])) if state.get("size") == size else []
        if chunk.number in done:
            raise BatchMovedOnError
        CardKeyBatch.objects.filter(pk=batch_id).update(
            committed_chunks={"size": size, "done": [*done, chunk.number]},
            processed_lines=F("processed_lines") + chunk.lines,
            imported_count=F("imported_count") + result.imported,
            duplicate_count=F("duplicate_count") + result.duplicates + chunk.repeats,
            progressed_at=now,
        )


def _writer(ahead: _PreparedAhead, batch_id: int, defaults: KeyDefaults, size: int,
            errors: list[BaseException], *, own_connection: bool) -> None:
    try:
        while (chunk := ahead.take()) is not None:
            _chunk_commit(batch_id, defaults, chunk, size)
    except BaseException as error:  # every writer's failure reaches the run, none is lost
        errors.append(error)
        ahead.stopped.set()
    finally:
        if own_connection:
            connection.close()


def chunks_write(*, batch: CardKeyBatch, secrets: Iterable[str], size: int, skip: frozenset[int],
                 expected_lines: int | None = None) -> None:
    """Prepare and commit every chunk of `secrets` not in `skip`. Raises the first writer's error (the chunks
    committed before it stay recorded); `BatchMovedOnError` when another worker took over.

    `secrets` may be an iterator that parses the input as it goes (chunks are cut from it in order, so chunk
    numbers are the same at every run); `expected_lines`, at least its length, then sizes the run."""
    defaults = KeyDefaults(sku_id=batch.sku_id, batch_id=batch.pk, expires_at=batch.expires_at,
                           supplier_id=batch.supplier_id, cost=batch.cost)
    source = _prepared_chunks(secrets, size=size, skip=skip, ring=keyring())
    lines = len(secrets) if isinstance(secrets, Sized) else expected_lines
    pending = 2 if lines is None else chunk_count(lines, size) - len(skip)
    if pending <= 1:
        for chunk in source:
            _chunk_commit(batch.pk, defaults, chunk, size)
        return
    parallel = connection.vendor == "postgresql" and not connection.in_atomic_block
    writers = min(WRITERS, pending) if parallel else 1
    ahead = _PreparedAhead(source)
    errors: list[BaseException] = []
    try:
        if writers == 1:
            _writer(ahead, batch.pk, defaults, size, errors, own_connection=False)
        else:
            threads = [threading.Thread(target=_writer, args=(ahead, batch.pk, defaults, size, errors),
                                        kwargs={"own_connection": True}, name=f"card-key-import-write-{index}")
                       for index in range(writers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        ahead.close()
    if errors:
        real = [error for error in errors if not isinstance(error, BatchMovedOnError)]
        raise real[0] if real else errors[0]


def batch_finish(batch: CardKeyBatch, *, total_lines: int | None = None, invalid_count: int | None = None) -> None:
    """Mark the batch done. With the input's exact counts (it was parsed while imported), they replace the
    estimate: every line is now processed, the valid ones by the chunks and the invalid ones here."""
    counts: dict[str, int] = {}
    if total_lines is not None and invalid_count is not None:
        counts = {"total_lines": total_lines, "processed_lines": total_lines, "invalid_count": invalid_count}
    CardKeyBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.DONE, finished_at=timezone.now(),
                                                    pending_payload=None, **counts)
    batch.refresh_from_db()
