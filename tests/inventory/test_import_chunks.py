"""Card-key import in chunks (every backend): repeats across chunks, platform-wide duplicates, supplier keys,
progress committed chunk by chunk, failures that leave a clear batch state, and resuming after them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import OperationalError

from kameng.core.errors import ApplicationError
from kameng.inventory import import_pipeline, import_store, imports
from kameng.inventory.batches import card_key_batch_resume, card_key_batch_run, card_key_import_submit
from kameng.inventory.import_store import KeyDefaults, StoreResult
from kameng.inventory.imports import card_key_batch_create, card_keys_import
from kameng.inventory.models import CardKey, CardKeyBatch, ImportStatus
from kameng.inventory.services import decrypt_secrets
from tests.factories import SkuFactory, SupplierFactory, stock_sku

pytestmark = pytest.mark.django_db


def _secrets_of(batch: CardKeyBatch) -> list[str]:
    rows = CardKey.objects.filter(batch=batch).values_list("secret_ciphertext", flat=True)
    return sorted(decrypt_secrets([bytes(row) for row in rows]))


def _counts(batch: CardKeyBatch) -> tuple[str, int, int, int, int, int]:
    batch.refresh_from_db()
    return (batch.status, batch.total_lines, batch.processed_lines, batch.imported_count, batch.duplicate_count,
            batch.invalid_count)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(import_pipeline, "CHUNK_SIZE", 3)
    return 3


@pytest.fixture
def progress_seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """(processed, imported, duplicates) of the batch as committed before each chunk is stored."""
    seen: list[tuple[int, int, int]] = []
    real = import_pipeline.rows_store

    def spy(*, defaults: KeyDefaults, rows: list[tuple[bytes, bytes]], now: object) -> StoreResult:
        seen.append(CardKeyBatch.objects.filter(pk=defaults.batch_id).values_list(
            "processed_lines", "imported_count", "duplicate_count").get())
        return real(defaults=defaults, rows=rows, now=now)  # type: ignore[arg-type]

    monkeypatch.setattr(import_pipeline, "rows_store", spy)
    return seen


def test_repeats_are_refused_across_chunks_and_against_every_sku(small_chunks: int,
                                                                  progress_seen: list[tuple[int, int, int]]) -> None:
    sku = SkuFactory.create()
    other_sku = SkuFactory.create()
    stock_sku(other_sku, 2, prefix="ELSEWHERE")
    progress_seen.clear()
    batch = card_key_batch_create(sku_id=sku.pk, created_by_id=None)
    lines = ["A", "B", "C", "ELSEWHERE-000001", "A", "D", "X" * 501, "C", "E", "ELSEWHERE-000000"]

    card_keys_import(batch=batch, text="\n".join(lines))

    assert _counts(batch) == (ImportStatus.DONE, 10, 10, 5, 4, 1)
    assert _secrets_of(batch) == ["A", "B", "C", "D", "E"]
    # Nine valid lines in chunks of three; the over-long line counts as processed from the start.
    assert progress_seen == [(1, 0, 0), (4, 3, 0), (7, 4, 2)]
    assert CardKey.objects.filter(sku=other_sku).count() == 2


def test_supplier_keys_are_stored_with_the_supplier_and_its_cost() -> None:
    sku = SkuFactory.create()
    supplier = SupplierFactory.create()

    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="S-1\nS-2", supplier_id=supplier.pk,
                                   cost=Decimal("8.5"))

    assert (batch.supplier_id, batch.cost) == (supplier.pk, Decimal("8.50"))
    stored = set(CardKey.objects.filter(batch=batch).values_list("supplier_id", "cost"))
    assert stored == {(supplier.pk, Decimal("8.50"))}


def test_supplier_terms_reach_the_worker_path(settings, django_capture_on_commit_callbacks) -> None:
    settings.KAMENG_IMPORT_INLINE_LIMIT = 1
    sku = SkuFactory.create()
    supplier = SupplierFactory.create()

    with django_capture_on_commit_callbacks(execute=True):
        batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="W-1\nW-2\nW-3",
                                       supplier_id=supplier.pk, cost=Decimal("3.20"))

    assert _counts(batch) == (ImportStatus.DONE, 3, 3, 3, 0, 0)
    assert set(CardKey.objects.filter(batch=batch).values_list("supplier_id", "cost")) == {
        (supplier.pk, Decimal("3.20"))}


def test_platform_keys_have_no_supplier_and_no_cost() -> None:
    sku = SkuFactory.create()

    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="P-1")

    assert list(CardKey.objects.filter(batch=batch).values_list("supplier_id", "cost")) == [(None, None)]


@pytest.mark.parametrize(("terms", "code"), [
    ({"cost": Decimal("1.00")}, "cost_without_supplier"),
    ({"supplier_id": 987654}, "supplier_not_found"),
    ({"cost": Decimal("-0.01"), "supplier": True}, "negative_cost"),
])
def test_bad_supplier_terms_are_refused_before_anything_is_stored(terms: dict[str, object], code: str) -> None:
    sku = SkuFactory.create()
    if terms.pop("supplier", False):
        terms["supplier_id"] = SupplierFactory.create().pk

    with pytest.raises(ApplicationError) as refused:
        card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="K-1", **terms)  # type: ignore[arg-type]

    assert refused.value.code == code
    assert CardKeyBatch.objects.count() == 0
    assert CardKey.objects.count() == 0


def _fail_on_chunk(monkeypatch: pytest.MonkeyPatch, failing: int) -> None:
    real = import_pipeline.rows_store
    calls = {"n": 0}

    def flaky(**kwargs: object) -> StoreResult:
        calls["n"] += 1
        if calls["n"] == failing:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(import_pipeline, "rows_store", flaky)


def test_a_failure_mid_import_leaves_a_failed_batch_with_exactly_its_committed_chunks(
        small_chunks: int, monkeypatch: pytest.MonkeyPatch, settings, django_capture_on_commit_callbacks) -> None:
    settings.KAMENG_IMPORT_INLINE_LIMIT = 1
    sku = SkuFactory.create()
    stock_sku(sku, 1, prefix="OLD")
    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None,
                                   text="R-1\nR-2\nR-1\nOLD-000000\nR-3\nR-4\nR-5\nR-2")  # queued: task not run
    _fail_on_chunk(monkeypatch, failing=2)

    with pytest.raises(OperationalError):
        card_key_batch_run(batch_id=batch.pk)

    # The first chunk (R-1, R-2, repeat of R-1) committed; the second rolled back whole.
    assert _counts(batch) == (ImportStatus.FAILED, 8, 3, 2, 1, 0)
    assert batch.error == "OperationalError: server closed the connection unexpectedly"
    assert batch.finished_at is not None
    assert batch.pending_payload is not None  # kept for the resume
    assert _secrets_of(batch) == ["R-1", "R-2"]

    monkeypatch.undo()
    monkeypatch.setattr(import_pipeline, "CHUNK_SIZE", 3)
    with django_capture_on_commit_callbacks(execute=True):
        card_key_batch_resume(batch_id=batch.pk)  # queues the task, which runs eagerly in tests

    # Resumed after the first chunk: the repeat of R-2 in the last line is still refused.
    assert _counts(batch) == (ImportStatus.DONE, 8, 8, 5, 3, 0)
    assert batch.pending_payload is None
    assert batch.error == ""
    assert _secrets_of(batch) == ["R-1", "R-2", "R-3", "R-4", "R-5"]


def test_only_a_failed_batch_can_be_resumed() -> None:
    sku = SkuFactory.create()
    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="D-1")

    with pytest.raises(ApplicationError) as refused:
        card_key_batch_resume(batch_id=batch.pk)

    assert refused.value.code == "batch_not_resumable"
    assert _counts(batch) == (ImportStatus.DONE, 1, 1, 1, 0, 0)


def test_an_inline_import_that_fails_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    sku = SkuFactory.create()
    _fail_on_chunk(monkeypatch, failing=1)

    with pytest.raises(OperationalError):
        card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="F-1\nF-2")

    batch = CardKeyBatch.objects.get()
    assert _counts(batch) == (ImportStatus.FAILED, 2, 0, 0, 0, 0)
    assert CardKey.objects.count() == 0


def test_a_second_worker_on_the_same_batch_stops_without_writing(small_chunks: int, settings) -> None:
    settings.KAMENG_IMPORT_INLINE_LIMIT = 1
    sku = SkuFactory.create()
    lines = ["M-1", "M-2", "M-3", "M-4", "M-5"]
    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="\n".join(lines))
    card_key_batch_run(batch_id=batch.pk)
    assert CardKeyBatch.objects.get(pk=batch.pk).committed_chunks == {"size": 3, "done": [0, 1]}
    slower = CardKeyBatch.objects.get(pk=batch.pk)  # a redelivered task that still believes nothing is done

    imports._import_run(slower, lines, size=3, skip=frozenset())

    assert _counts(batch) == (ImportStatus.DONE, 5, 5, 5, 0, 0)  # its first chunk rolled back, then it stopped
    assert _secrets_of(batch) == lines


def test_a_redelivered_task_resumes_a_running_batch_after_its_last_chunk(small_chunks: int, settings,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    settings.KAMENG_IMPORT_INLINE_LIMIT = 1
    sku = SkuFactory.create()
    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="\n".join(f"Q-{n}" for n in range(7)))
    _fail_on_chunk(monkeypatch, failing=3)
    with pytest.raises(OperationalError):
        card_key_batch_run(batch_id=batch.pk)
    # A worker killed outright would not have marked it failed: it stays running with two chunks committed.
    CardKeyBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.RUNNING, error="", finished_at=None)
    monkeypatch.undo()
    monkeypatch.setattr(import_pipeline, "CHUNK_SIZE", 3)
    stored_again: list[int] = []
    real = import_pipeline.rows_store

    def counting(**kwargs: object) -> StoreResult:
        stored_again.append(len(kwargs["rows"]))  # type: ignore[arg-type]
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(import_pipeline, "rows_store", counting)

    card_key_batch_run(batch_id=batch.pk)

    assert stored_again == [1]  # only the last line was still to do
    assert _counts(batch) == (ImportStatus.DONE, 7, 7, 7, 0, 0)


def test_a_key_another_import_stored_meanwhile_is_counted_as_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 1, prefix="RACE")
    real = import_store._stored_fingerprints
    looks: list[int] = []

    def blind_first_look(marks: list[bytes]) -> set[bytes]:
        looks.append(len(marks))
        return set() if len(looks) == 1 else real(marks)  # the other import commits between our look and insert

    monkeypatch.setattr(import_store, "_stored_fingerprints", blind_first_look)
    batch = card_key_batch_create(sku_id=sku.pk, created_by_id=None)

    # The portable path, on every backend; the connection's own vendor comes back before any fixture's teardown
    # (the ledger check after each test writes vendor-specific SQL).
    vendor = import_store.connection.vendor
    import_store.connection.vendor = "sqlite"
    try:
        card_keys_import(batch=batch, text="RACE-000000\nFRESH-1\nFRESH-2")
    finally:
        import_store.connection.vendor = vendor

    assert looks == [3, 3]
    assert _counts(batch) == (ImportStatus.DONE, 3, 3, 2, 1, 0)
    assert _secrets_of(batch) == ["FRESH-1", "FRESH-2"]


def test_the_sweeper_resumes_a_running_batch_that_stopped_moving(small_chunks: int, settings,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from kameng.inventory.batches import card_key_batches_redrive

    settings.KAMENG_IMPORT_INLINE_LIMIT = 1
    sku = SkuFactory.create()
    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="\n".join(f"Z-{n}" for n in range(5)))
    _fail_on_chunk(monkeypatch, failing=2)
    with pytest.raises(OperationalError):
        card_key_batch_run(batch_id=batch.pk)
    monkeypatch.undo()
    monkeypatch.setattr(import_pipeline, "CHUNK_SIZE", 3)
    # As a worker killed mid-import leaves it: running, its last chunk committed a while ago.
    CardKeyBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.RUNNING, error="", finished_at=None,
                                                    progressed_at=timezone.now() - timedelta(minutes=3))

    assert card_key_batches_redrive() == 0  # still within STALLED_AFTER: its worker may be alive
    CardKeyBatch.objects.filter(pk=batch.pk).update(progressed_at=timezone.now() - timedelta(minutes=11))
    assert card_key_batches_redrive() == 1

    assert _counts(batch) == (ImportStatus.DONE, 5, 5, 5, 0, 0)
    assert card_key_batches_redrive() == 0


def test_stored_fingerprints_are_the_blind_index_lookups_compute() -> None:
    from kameng.inventory.imports import fingerprint

    sku = SkuFactory.create()
    batch = card_key_batch_create(sku_id=sku.pk, created_by_id=None)

    card_keys_import(batch=batch, text="密钥-1\nKEY 2\nkey-3")

    stored = {bytes(mark) for mark in CardKey.objects.filter(batch=batch).values_list("fingerprint", flat=True)}
    assert stored == {fingerprint("密钥-1"), fingerprint("KEY 2"), fingerprint("key-3")}


def test_the_worker_stores_its_first_chunk_before_the_whole_input_is_parsed(small_chunks: int, settings,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    settings.KAMENG_IMPORT_INLINE_LIMIT = 1
    sku = SkuFactory.create()
    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="\n".join(f"P-{n}" for n in range(60)))
    normalised: list[str] = []
    real_normalise = imports.normalise_secret

    def counting_normalise(line: str) -> str:
        normalised.append(line)
        return real_normalise(line)

    parsed_at_store: list[int] = []
    real_store = import_pipeline.rows_store

    def store(**kwargs: object) -> StoreResult:
        parsed_at_store.append(len(normalised))
        return real_store(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(imports, "normalise_secret", counting_normalise)
    monkeypatch.setattr(import_pipeline, "rows_store", store)

    card_key_batch_run(batch_id=batch.pk)

    assert len(parsed_at_store) == 20
    assert parsed_at_store[0] < 60  # the preparing thread runs at most a few chunks ahead of the writer
    assert len(normalised) == 60  # every line parsed once
    assert _counts(batch) == (ImportStatus.DONE, 60, 60, 60, 0, 0)


def test_a_worker_import_counts_its_lines_exactly_once_they_are_all_parsed(
        small_chunks: int, settings, progress_seen: list[tuple[int, int, int]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings.KAMENG_IMPORT_INLINE_LIMIT = 1
    sku = SkuFactory.create()
    lines = ["K-1", "", "# 注释", "K-2", "X" * 501, "K-3", "K-1", "K-4", "  ", "K-5"]
    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="\n".join(lines) + "\n")
    totals_seen: list[tuple[int, int]] = []
    real_store = import_pipeline.rows_store

    def store(**kwargs: object) -> StoreResult:
        totals_seen.append(CardKeyBatch.objects.filter(pk=batch.pk).values_list("total_lines", "invalid_count").get())
        return real_store(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(import_pipeline, "rows_store", store)  # wraps the progress spy

    card_key_batch_run(batch_id=batch.pk)

    # While running: every line of the upload as the total, nothing invalid counted yet; valid lines as they commit.
    assert totals_seen == [(10, 0), (10, 0)]
    assert progress_seen == [(0, 0, 0), (3, 3, 0)]
    # Done: the six key lines and the over-long one; blanks and the comment are not lines of the import.
    assert _counts(batch) == (ImportStatus.DONE, 7, 7, 5, 1, 1)
    assert _secrets_of(batch) == ["K-1", "K-2", "K-3", "K-4", "K-5"]
