"""Card-key import benchmark: 1,000,000 keys through the admin's import service on PostgreSQL, beside a raw COPY.

What one run does, on 127.0.0.1 and with its own fresh database (`kameng_import_bench`, dropped at the end):
  1. migrates it and seeds a SKU, a supplier, and platform stock on another SKU (some of which the input repeats);
  2. builds the input: N unique keys, plus repeats of its own lines and copies of keys already on the platform,
     shuffled together (one key per line, as an uploaded TXT file);
  3. the floor: a copy of the seeded database takes N pre-encrypted rows (random fingerprint, ciphertext of the
     real length) by binary COPY straight into `inventory_cardkey`, committed in the import's chunk size — the
     database's own cost of storing these rows with no hashing, encryption or duplicate check. Measured before
     and after the import, since the machine may be shared;
  4. imports the input through `card_key_import_submit` (what the admin's import page and the supplier console
     call): the input is stored encrypted on a queued batch and the worker task runs it (eagerly, in this
     process), while a thread polls the batch row like the progress bar does and draws it;
  5. verifies: the batch is done, imported == N, refused duplicates == repeats + platform copies, every stored
     key belongs to the batch's supplier at its cost, a random sample decrypts to keys of the input, the platform
     keys the input repeated are still only on their own SKU, and the progress moved in many committed steps.

    .venv/bin/python bench/import.py [--keys 1000000] [--repeats 5000] [--platform-copies 5000] [--keep-database]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import common
from common import DEFAULT_PG_URL, django_start, migrate

COST = Decimal("9.00")
PLATFORM_KEYS = 20_000


def bench_environment(args: argparse.Namespace) -> dict[str, str]:
    """Production settings for this run only: nothing is read from .env, keys are generated, tasks run eagerly."""
    return common.bench_environment(pg_url=args.pg_url, database=args.database, REDIS_URL="",
                                    KAMENG_VAR_DIR="/tmp/kameng-bench-var", CELERY_TASK_ALWAYS_EAGER="1")


def database_drop(args: argparse.Namespace, name: str) -> None:
    common.database_drop(args.pg_url, name)


def database_create(args: argparse.Namespace, name: str, template: str | None = None) -> None:
    common.database_create(args.pg_url, name, template=template)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (a PostgreSQL backend: the server is local)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- seeding and the input (in this process, through the real services) ---------------------------------------


@dataclass
class Seeded:
    sku_id: int
    other_sku_id: int
    supplier_id: int
    floor_batch_id: int
    platform_secrets: list[str]


@dataclass
class Input:
    text: str
    unique: list[str]
    repeats: int
    platform_copies: list[str]
    lines: int = field(init=False)

    def __post_init__(self) -> None:
        self.lines = len(self.unique) + self.repeats + len(self.platform_copies)


def seed(args: argparse.Namespace) -> Seeded:
    from kameng.accounts.models import User
    from kameng.catalog.models import Category, Product, Sku
    from kameng.inventory.batches import card_key_import_submit
    from kameng.inventory.imports import card_key_batch_create
    from kameng.suppliers.models import Supplier, SupplierStatus

    category = Category.objects.create(name="游戏点卡", slug="bench-import")
    product = Product.objects.create(category=category, name="压测点卡")
    sku = Sku.objects.create(product=product, name="10 元", face_value=Decimal("10.00"), price=Decimal("9.50"))
    other = Sku.objects.create(product=product, name="50 元", face_value=Decimal("50.00"), price=Decimal("48.00"))
    owner = User.objects.create(username="bench-supplier", password="!")
    supplier = Supplier.objects.create(owner=owner, name="压测供货商", status=SupplierStatus.APPROVED)
    run = secrets.token_hex(3)
    platform = [f"PLATFORM-{run}-{index:07d}-{secrets.token_hex(6)}" for index in range(PLATFORM_KEYS)]
    stocked = card_key_import_submit(sku_id=other.pk, created_by_id=None, text="\n".join(platform),
                                     source_name="bench-platform")
    stocked.refresh_from_db()  # imported by the worker task, run eagerly once the submission committed
    assert stocked.imported_count == PLATFORM_KEYS, stocked.imported_count
    floor_batch = card_key_batch_create(sku_id=sku.pk, created_by_id=None, source_name="bench-floor")
    return Seeded(sku_id=sku.pk, other_sku_id=other.pk, supplier_id=supplier.pk, floor_batch_id=floor_batch.pk,
                  platform_secrets=platform)


def build_input(args: argparse.Namespace, seeded: Seeded) -> Input:
    run = secrets.token_hex(3)
    unique = [f"BENCH-{run}-{index:08d}-{secrets.token_hex(6)}" for index in range(args.keys)]
    chooser = random.Random(7)
    repeats = [chooser.choice(unique) for _ in range(args.repeats)]
    copies = chooser.sample(seeded.platform_secrets, min(args.platform_copies, len(seeded.platform_secrets)))
    lines = unique + repeats + copies
    chooser.shuffle(lines)
    return Input(text="\n".join(lines) + "\n", unique=unique, repeats=len(repeats), platform_copies=copies)


# --- the floor: raw COPY of pre-encrypted rows ------------------------------------------------------------------


def floor_run(args: argparse.Namespace, seeded: Seeded, sample_token_length: int, label: str) -> tuple[float, float]:
    """Rows/s of a binary COPY of `args.keys` pre-made rows into a copy of the seeded database's key table, by as
    many connections as the import has writers, and the PostgreSQL backends' CPU µs per row."""
    import psycopg

    from kameng.inventory.import_pipeline import CHUNK_SIZE, WRITERS

    floor_database = f"{args.database}_floor"
    database_create(args, floor_database, template=f"{args.database}_seeded")
    now = dt.datetime.now(dt.UTC)
    rows = [(seeded.sku_id, seeded.floor_batch_id, "available", os.urandom(sample_token_length), os.urandom(32),
             now, seeded.supplier_id, COST) for _ in range(args.keys)]
    chunks = [rows[offset : offset + CHUNK_SIZE] for offset in range(0, len(rows), CHUNK_SIZE)]
    columns = "(sku_id, batch_id, status, secret_ciphertext, fingerprint, created_at, supplier_id, cost)"
    statement = f"COPY inventory_cardkey {columns} FROM STDIN (FORMAT BINARY)"
    taking = threading.Lock()
    backends_cpu: list[float] = []

    def copier() -> None:
        with psycopg.connect(f"{args.pg_url.rstrip('/')}/{floor_database}", autocommit=True) as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            before = process_cpu_seconds(backend)
            while True:
                with taking:
                    if not chunks:
                        break
                    chunk = chunks.pop()
                with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
                    copy.set_types(["int8", "int8", "varchar", "bytea", "bytea", "timestamptz", "int8", "numeric"])
                    for row in chunk:
                        copy.write_row(row)
            backends_cpu.append(process_cpu_seconds(backend) - before)

    try:
        threads = [threading.Thread(target=copier, name=f"floor-{index}") for index in range(WRITERS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        database_drop(args, floor_database)
    rate = len(rows) / elapsed
    backend_cpu = sum(backends_cpu) / len(rows) * 1e6
    print(f"  floor ({label}): raw COPY of {len(rows):,} pre-encrypted rows by {WRITERS} connections in "
          f"{elapsed:.1f} s = {rate:,.0f} rows/s; PostgreSQL CPU {backend_cpu:.1f} µs/row")
    return rate, backend_cpu


# --- the import and its progress bar ----------------------------------------------------------------------------


class ProgressWatcher(threading.Thread):
    """Polls the batch row on its own connection, as the admin's progress fragment does, and draws a bar."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(name="progress", daemon=True)
        self.url = f"{args.pg_url.rstrip('/')}/{args.database}"
        self.database = args.database
        self.stopped = threading.Event()
        self.steps: list[int] = []
        self.first_commit_at: float | None = None  # perf_counter() when a committed chunk was first seen
        # CPU seconds of every backend of the bench database, first and last seen (the writers' backends come and
        # go with their threads: up to one poll of a closing backend's work is missed).
        self.backend_cpu: dict[int, list[float]] = {}

    def backends_sample(self, conn: Any) -> None:
        pids = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                            [self.database]).fetchall()
        for (pid,) in pids:
            try:
                seconds = process_cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
            self.backend_cpu.setdefault(pid, [seconds, seconds])[1] = seconds

    def backend_seconds(self) -> float:
        return sum(last - first for first, last in self.backend_cpu.values())

    def run(self) -> None:
        import psycopg

        started = time.perf_counter()
        with psycopg.connect(self.url, autocommit=True) as conn:
            self.backends_sample(conn)
            while not self.stopped.wait(0.25):
                self.backends_sample(conn)
                row = conn.execute("SELECT processed_lines, total_lines, imported_count FROM inventory_cardkeybatch "
                                   "WHERE source_name = 'bench-import' ORDER BY id DESC LIMIT 1").fetchone()
                if row is None:
                    continue
                processed, total, imported = row
                if not self.steps or self.steps[-1] != processed:
                    self.steps.append(processed)
                if imported and self.first_commit_at is None:
                    self.first_commit_at = time.perf_counter()
                share = processed / total if total else 0.0
                bar = "#" * int(share * 40)
                rate = imported / (time.perf_counter() - started)
                print(f"\r  [{bar:<40}] {share:6.1%} {processed:>9,}/{total:,} lines  {rate:,.0f} keys/s",
                      end="", flush=True)
        print()


def import_run(args: argparse.Namespace, seeded: Seeded, data: Input) -> tuple[Any, float, float, float]:
    from django.db import connection

    from kameng.inventory.batches import card_key_import_submit

    connection.ensure_connection()  # so that the watcher's first sample sees its backend
    watcher = ProgressWatcher(args)
    watcher.start()
    time.sleep(0.3)
    cpu_before = os.times()
    started = time.perf_counter()
    batch = card_key_import_submit(sku_id=seeded.sku_id, created_by_id=None, text=data.text,
                                   source_name="bench-import", supplier_id=seeded.supplier_id, cost=COST)
    elapsed = time.perf_counter() - started
    cpu_after = os.times()
    watcher.stopped.set()
    watcher.join()
    backend_cpu = watcher.backend_seconds()
    batch.refresh_from_db()
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    first = "never" if watcher.first_commit_at is None else f"{watcher.first_commit_at - started:.2f} s"
    print(f"  progress: {len(watcher.steps)} distinct committed values seen by the poller; first committed keys "
          f"seen {first} after the submission began (polled every 0.25 s)")
    args.progress_steps = len(watcher.steps)
    return batch, elapsed, cpu, backend_cpu


def verify(args: argparse.Namespace, seeded: Seeded, data: Input, batch: Any) -> bool:
    from kameng.inventory.imports import fingerprint
    from kameng.inventory.models import CardKey, ImportStatus
    from kameng.inventory.services import decrypt_secrets

    checks: list[tuple[str, bool]] = []
    checks.append((f"batch done (status {batch.status})", batch.status == ImportStatus.DONE))
    checks.append((f"lines {batch.total_lines:,} == {data.lines:,} and all processed",
                   batch.total_lines == data.lines and batch.processed_lines == data.lines))
    stored = CardKey.objects.filter(batch_id=batch.pk).count()
    checks.append((f"imported {batch.imported_count:,} == stored {stored:,} == unique keys {len(data.unique):,}",
                   batch.imported_count == stored == len(data.unique)))
    refused = data.repeats + len(data.platform_copies)
    checks.append((f"refused duplicates {batch.duplicate_count:,} == {data.repeats:,} repeats + "
                   f"{len(data.platform_copies):,} keys already on the platform", batch.duplicate_count == refused))
    attributed = CardKey.objects.filter(batch_id=batch.pk, supplier_id=seeded.supplier_id, cost=COST).count()
    checks.append((f"every key the supplier's at ¥{COST} ({attributed:,})", attributed == stored))
    sample_ids = random.sample(range(stored), min(args.sample, stored))
    ids = list(CardKey.objects.filter(batch_id=batch.pk).order_by("id").values_list("id", flat=True))
    tokens = CardKey.objects.filter(id__in=[ids[index] for index in sample_ids]).values_list(
        "secret_ciphertext", "fingerprint")
    plaintexts = decrypt_secrets([bytes(token) for token, _ in tokens])
    known = set(data.unique)
    matching = sum(1 for secret, (_, mark) in zip(plaintexts, tokens, strict=True)
                   if secret in known and fingerprint(secret) == bytes(mark))
    checks.append((f"sample of {len(plaintexts):,} keys decrypts to input keys with their fingerprint",
                   matching == len(plaintexts)))
    copies = [fingerprint(secret) for secret in data.platform_copies]
    where = set(CardKey.objects.filter(fingerprint__in=copies).values_list("sku_id", flat=True))
    held = CardKey.objects.filter(fingerprint__in=copies).count()
    checks.append((f"the {len(copies):,} platform keys in the input stay on their own SKU only",
                   held == len(copies) and where <= {seeded.other_sku_id}))
    checks.append((f"progress committed in {args.progress_steps} visible steps (> 1)", args.progress_steps > 1))
    ok = True
    for label, passed in checks:
        print(f"  [{'ok' if passed else 'FAILED'}] {label}")
        ok = ok and passed
    return ok


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000, help="unique keys in the input")
    parser.add_argument("--repeats", type=int, default=5_000, help="lines repeating a key of the input")
    parser.add_argument("--platform-copies", type=int, default=5_000,
                        help=f"lines repeating a key already on the platform (at most {PLATFORM_KEYS:,})")
    parser.add_argument("--sample", type=int, default=2_000, help="stored keys decrypted and checked")
    parser.add_argument("--no-floor", action="store_true", help="skip the raw-COPY floor")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--database", default="kameng_import_bench")
    parser.add_argument("--keep-database", action="store_true", help="leave the database for inspection")
    return parser.parse_args()


def main() -> int:
    args = parse_arguments()
    env = bench_environment(args)
    load_before = os.getloadavg()
    print(f"kameng card-key import benchmark — {os.cpu_count()} CPUs, database {args.database}, "
          f"load average {load_before[0]:.1f}")
    ok = False
    try:
        database_create(args, args.database)
        migrate(env)
        django_start(env)
        from django.db import connections

        from kameng.core.crypto import keyring
        from kameng.inventory.models import SECRET_CONTEXT

        seeded = seed(args)
        data = build_input(args, seeded)
        print(f"  input: {data.lines:,} lines = {len(data.unique):,} unique keys + {data.repeats:,} repeats + "
              f"{len(data.platform_copies):,} keys already on the platform ({len(data.text) / 1e6:.1f} MB)")
        token_length = len(keyring().encrypt(data.unique[0].encode(), context=SECRET_CONTEXT.encode()))
        connections.close_all()
        database_create(args, f"{args.database}_seeded", template=args.database)
        floors = [] if args.no_floor else [floor_run(args, seeded, token_length, "before")]
        batch, elapsed, cpu, backend_cpu = import_run(args, seeded, data)
        rate = batch.imported_count / elapsed
        python_us, postgres_us = cpu / data.lines * 1e6, backend_cpu / data.lines * 1e6
        print(f"  import: {batch.imported_count:,} keys stored, {batch.duplicate_count:,} refused, in "
              f"{elapsed:.1f} s = {rate:,.0f} keys/s ({data.lines / elapsed:,.0f} lines/s); CPU per line: "
              f"this process {python_us:.1f} µs (all threads), PostgreSQL backends {postgres_us:.1f} µs")
        connections.close_all()
        if not args.no_floor:
            floors.append(floor_run(args, seeded, token_length, "after"))
        print("\n== verification")
        ok = verify(args, seeded, data, batch)
        load_after = os.getloadavg()
        print("\n== summary")
        print(f"  import through card_key_import_submit: {rate:,.0f} keys/s (encrypted + fingerprinted, "
              f"duplicates refused, progress committed per chunk)")
        # Alone on the machine: all cores share the work, and the Python side (one GIL) can use only one of them.
        cores = os.cpu_count() or 1
        alone = min(cores * 1e6 / (python_us + postgres_us), 1e6 / python_us)
        print(f"  CPU per line: Python {python_us:.1f} µs, PostgreSQL {postgres_us:.1f} µs -> alone on {cores} "
              f"cores about {alone:,.0f} keys/s (min of cores / total CPU and 1 / Python CPU)")
        if floors:
            floor = sum(rate for rate, _ in floors) / len(floors)
            floor_cpu = sum(cpu for _, cpu in floors) / len(floors)
            print(f"  floor (raw binary COPY of pre-encrypted rows, same table, same chunks): {floor:,.0f} rows/s "
                  f"(before {floors[0][0]:,.0f}, after {floors[-1][0]:,.0f}); PostgreSQL CPU {floor_cpu:.1f} µs/row")
            print(f"  ratio import / floor: {rate / floor:.2f}")
        print(f"  load average {load_before[0]:.1f} -> {load_after[0]:.1f} (shared machine: figures move with it)")
        print(f"  checks: {'all hold' if ok else 'FAILED'}")
    finally:
        from django.db import connections

        connections.close_all()
        database_drop(args, f"{args.database}_seeded")
        if not args.keep_database:
            database_drop(args, args.database)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
