"""Card-key import on PostgreSQL, outside a test transaction: two writers on their own connections, concurrent
imports of overlapping keys, and the COPY path storing exactly what the portable path stores."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from django.db import OperationalError, connection

from kameng.inventory import batches, import_pipeline, import_store
from kameng.inventory.batches import card_key_batch_run, card_key_import_submit
from kameng.inventory.imports import card_key_batch_create, card_keys_import, fingerprint
from kameng.inventory.models import CardKey, CardKeyBatch, ImportStatus
from kameng.inventory.services import decrypt_secrets
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import SkuFactory, SupplierFactory, stock_sku

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    requires_postgresql()
    monkeypatch.setattr(import_pipeline, "CHUNK_SIZE", 50)


def _secrets_of(batch: CardKeyBatch) -> list[str]:
    rows = CardKey.objects.filter(batch=batch).values_list("secret_ciphertext", flat=True)
    return sorted(decrypt_secrets([bytes(row) for row in rows]))


def _state(batch: CardKeyBatch) -> tuple[str, int, int, int, int, int]:
    batch.refresh_from_db()
    return (batch.status, batch.total_lines, batch.processed_lines, batch.imported_count, batch.duplicate_count,
            batch.invalid_count)


def test_two_writers_store_every_chunk_once_with_exact_counts(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.KAMENG_IMPORT_INLINE_LIMIT = 10
    sku = SkuFactory.create()
    other = SkuFactory.create()
    existing = stock_sku(other, 30, prefix="THERE")
    supplier = SupplierFactory.create()
    lines = [f"TW-{n:04d}" for n in range(500)] + existing[:20] + [f"TW-{n:04d}" for n in range(0, 500, 10)]
    writers: Counter[str] = Counter()
    real = import_pipeline._chunk_commit

    def counting(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # type: ignore[arg-type]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            writers[str(cursor.fetchone()[0])] += 1

    monkeypatch.setattr(import_pipeline, "_chunk_commit", counting)
    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="\n".join(lines),
                                   supplier_id=supplier.pk, cost=Decimal("4.40"))
    card_key_batch_run(batch_id=batch.pk)  # as the worker does: in autocommit, so two writers

    assert _state(batch) == (ImportStatus.DONE, 570, 570, 500, 70, 0)
    assert len(writers) == 2
    assert sum(writers.values()) == 12  # 570 lines in chunks of 50
    assert sorted(batch.committed_chunks["done"]) == list(range(12))
    assert _secrets_of(batch) == [f"TW-{n:04d}" for n in range(500)]
    assert set(CardKey.objects.filter(batch=batch).values_list("supplier_id", "cost")) == {
        (supplier.pk, Decimal("4.40"))}
    assert CardKey.objects.filter(sku=other).count() == 30


def test_concurrent_imports_of_overlapping_keys_store_each_key_once() -> None:
    skus = [SkuFactory.create() for _ in range(3)]
    batches = [card_key_batch_create(sku_id=sku.pk, created_by_id=None) for sku in skus]
    # Every import holds the shared keys in a different order, the worst case for lock ordering.
    shared = [f"SHARED-{n:04d}" for n in range(300)]
    inputs = [shared[index::3] + shared + [f"OWN-{index}-{n}" for n in range(100)] for index in range(3)]

    outcomes = run_in_threads(3, lambda index: card_keys_import(batch=batches[index],
                                                                text="\n".join(inputs[index])))

    assert unexpected(outcomes) == []
    states = [_state(batch) for batch in batches]
    assert all(state[0] == ImportStatus.DONE for state in states)
    assert sum(state[3] for state in states) == 300 + 300  # every shared key once, every own key
    assert sum(state[4] for state in states) == 3 * 100 + 2 * 300  # repeats in each input, shared keys lost
    assert CardKey.objects.count() == 600
    assert CardKey.objects.values("fingerprint").distinct().count() == 600


def test_copy_path_and_portable_path_store_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 5, prefix="BEFORE")
    lines = ["A  1", "B", "A 1", "BEFORE-000003", "C", "X" * 501, "D", "B", "E"]

    def run(vendor: str, prefix: str) -> tuple[tuple[str, int, int, int, int, int], list[str], set[tuple[object, ...]]]:
        supplier = SupplierFactory.create()
        batch = card_key_batch_create(sku_id=sku.pk, created_by_id=None, supplier_id=supplier.pk,
                                      cost=Decimal("1.10"))
        calls: list[str] = []
        real = import_store.rows_store

        def via(**kwargs: object) -> import_store.StoreResult:
            calls.append(vendor)
            store = import_store._store_postgresql if vendor == "postgresql" else import_store._store_portable
            return store(kwargs["defaults"], kwargs["rows"], kwargs["now"])  # type: ignore[arg-type]

        monkeypatch.setattr(import_pipeline, "rows_store", via)
        text = "\n".join(line if line.startswith("BEFORE") else prefix + line for line in lines)
        card_keys_import(batch=batch, text=text)
        monkeypatch.setattr(import_pipeline, "rows_store", real)
        assert calls == [vendor]
        secrets = [secret.removeprefix(prefix) for secret in _secrets_of(batch)]
        columns: set[tuple[object, ...]] = set(
            CardKey.objects.filter(batch=batch).values_list("status", "expires_at", "cost", "sku_id"))
        return _state(batch), secrets, columns

    copied = run("postgresql", "P-")
    portable = run("sqlite", "S-")

    assert copied == portable
    assert copied[0] == (ImportStatus.DONE, 9, 9, 5, 3, 1)
    assert copied[1] == ["A 1", "B", "C", "D", "E"]


def test_fingerprints_are_stored_as_the_lookup_computes_them() -> None:
    sku = SkuFactory.create()
    batch = card_key_batch_create(sku_id=sku.pk, created_by_id=None)

    card_keys_import(batch=batch, text="\n".join(f"FP-{n}" for n in range(120)))

    stored = {bytes(mark) for mark in CardKey.objects.filter(batch=batch).values_list("fingerprint", flat=True)}
    assert stored == {fingerprint(f"FP-{n}") for n in range(120)}


def test_a_chunk_whose_batch_was_deleted_meanwhile_stores_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keys no longer have a database constraint on their batch: the chunk's lock on the batch row stands for it.
    sku = SkuFactory.create()
    batch = card_key_batch_create(sku_id=sku.pk, created_by_id=None)
    real = import_pipeline.rows_store

    def deleted_first(**kwargs: object) -> import_store.StoreResult:
        outcomes = run_in_threads(1, lambda _: CardKeyBatch.objects.filter(pk=batch.pk).delete())
        assert unexpected(outcomes) == []
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(import_pipeline, "rows_store", deleted_first)

    with pytest.raises(CardKeyBatch.DoesNotExist):
        card_keys_import(batch=batch, text="GONE-1\nGONE-2")

    assert CardKey.objects.count() == 0


def test_a_worker_that_died_mid_import_resumes_with_exact_counts(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.KAMENG_IMPORT_INLINE_LIMIT = 10
    monkeypatch.setattr(batches, "enqueue_after_commit", lambda *args: None)  # the test plays the worker
    sku = SkuFactory.create()
    stock_sku(SkuFactory.create(), 5, prefix="PLAT")
    lines = [f"CR-{n:04d}" for n in range(400)] + ["PLAT-000001", "", "X" * 501, "CR-0003", "PLAT-000004"]
    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="\n".join(lines))
    real = import_pipeline.rows_store
    calls = {"n": 0}

    def dies_at_the_fifth_chunk(**kwargs: object) -> import_store.StoreResult:
        calls["n"] += 1
        if calls["n"] == 5:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(import_pipeline, "rows_store", dies_at_the_fifth_chunk)
    with pytest.raises(OperationalError):
        card_key_batch_run(batch_id=batch.pk)
    committed = CardKeyBatch.objects.get(pk=batch.pk)
    assert committed.status == ImportStatus.FAILED
    assert committed.imported_count == CardKey.objects.filter(batch=batch).count() < 400
    # As a worker killed outright leaves it, then redelivered.
    CardKeyBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.RUNNING, error="", finished_at=None)
    monkeypatch.setattr(import_pipeline, "rows_store", real)

    card_key_batch_run(batch_id=batch.pk)

    assert _state(batch) == (ImportStatus.DONE, 404, 404, 400, 3, 1)
    assert _secrets_of(batch) == [f"CR-{n:04d}" for n in range(400)]
    assert sorted(batch.committed_chunks["done"]) == list(range(9))  # 403 valid lines in chunks of 50
