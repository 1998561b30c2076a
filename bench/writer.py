"""What the group-commit writer costs per order, in one process (no server, no request threads).

Seeds a small fresh PostgreSQL database (`kameng_writer`, dropped at the end) as `checkout.py` does and writes
wallet-paid card-key orders through the writer's own `write_batch` in batches of `--batch` (about what 64 clients
give a server process), the aftercare off, buyers cycling through `--buyers`. Prints per order the writer thread's
Python CPU, its PostgreSQL backend's CPU and SQL statements, per round (the first warms the caches). Everything in
a batch runs on the writer's critical path: each millisecond here is a millisecond no other checkout is written.
`--profile` prints a cProfile (CPU time) of the last round.

`--busy N` runs N threads of pure-Python busy work beside the writer (each `--busy-cpu-ms` of CPU, then a sleep of
`--busy-sleep-ms` standing for its I/O), as a server process's request threads compete with it for the GIL: every
wait of the writer for PostgreSQL then ends with a wait for the GIL, and the wall time per batch (the writer's
cycle: a process checks out at most batch ÷ cycle orders per second) shows what the round trips cost. Each round
also prints the round trips per batch: statements sent alone (a `kameng.core.sql.OneMessage` is one), plus one per
pipeline (`kameng.core.sql.statements_pipelined`), plus BEGIN and COMMIT where they travel alone. `--ab` writes
every other batch the way before one message, in the same process at the same moment (a paired comparison).

    .venv/bin/python bench/writer.py [--orders 3000] [--batch 12] [--rounds 3] [--busy 24] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aftercare  # orders_write, backend_cpu
import checkout  # the benchmark's environment and seeding helpers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--buyers", type=int, default=256)
    parser.add_argument("--busy", type=int, default=0, help="threads of busy work competing for the GIL")
    parser.add_argument("--busy-cpu-ms", type=float, default=0.3, help="each busy thread's CPU between its waits")
    parser.add_argument("--busy-sleep-ms", type=float, default=10.0, help="each busy thread's wait (its I/O)")
    parser.add_argument("--ab", action="store_true",
                        help="every other batch the way before one message: its SKU read, BEGIN, the orders, the "
                             "claim and journals pipelined, COMMIT (a paired A/B)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-lines", type=int, default=50)
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--database", default="kameng_writer")
    args = parser.parse_args()
    args.keys = args.orders * args.rounds + 100
    args.worker = False
    return checkout.in_process(args, run)


def batches_write(seeded: checkout.Seeded, buyers: list[int], count: int, batch: int, tag: str, *,
                  profiler: cProfile.Profile | None, busy: int = 0, busy_cpu: float = 0.0,
                  busy_sleep: float = 0.0, ab: bool = False) -> tuple[float, float, float]:
    """Write `count` orders in batches; returns the CPU and wall seconds of `write_batch` alone, and with `ab` the
    wall seconds of the batches written the way before one message (every other one; not in the first two figures:
    `drafts_write` in `atomic`, the SKU read each batch). Each
    checkout is queued as its request thread would queue it (wallet id looked up, the price rules warmed), before
    the measurement; `busy` threads of busy work run while the batches are written."""
    from django.test.utils import override_settings

    from kameng.catalog import selectors as catalog_selectors
    from kameng.catalog.pricing import price_rules_warm
    from kameng.ledger.services import wallet_account_id
    from kameng.orders import group_commit
    from kameng.orders.group_commit import _Checkout, write_batch

    batches = []
    for start in range(0, count, batch):
        todo = []
        for index in range(start, min(start + batch, count)):
            buyer_id = buyers[index % len(buyers)]
            price_rules_warm(buyer_id=buyer_id, sales_channel="api")
            todo.append(_Checkout(buyer_id=buyer_id, wallet_id=wallet_account_id(user_id=buyer_id),
                                  sku_id=seeded.sku_id, quantity=1, request_id=f"{tag}-{index}",
                                  sales_channel="api"))
        batches.append(todo)
    spent = waited = before = 0.0
    at_once, held = group_commit.drafts_at_once, catalog_selectors.SKUS_FOR_SALE_HELD_SECONDS
    stop = threading.Event()
    threads = [threading.Thread(target=busy_work, args=(stop, busy_cpu, busy_sleep), daemon=True)
               for _ in range(busy)]
    for thread in threads:
        thread.start()
    try:
        with override_settings(KAMENG_ORDER_AFTERCARE=[]):
            for index, todo in enumerate(batches):
                alone = ab and index % 2 == 1
                group_commit.drafts_at_once = (lambda _drafts: False) if alone else at_once  # type: ignore[assignment]
                catalog_selectors.SKUS_FOR_SALE_HELD_SECONDS = 0.0 if alone else held
                cpu, wall = time.thread_time(), time.perf_counter()
                if profiler is not None:
                    profiler.enable()
                write_batch(todo)
                if profiler is not None:
                    profiler.disable()
                if alone:
                    before += time.perf_counter() - wall
                    continue
                spent += time.thread_time() - cpu
                waited += time.perf_counter() - wall
                assert all(item.order is not None for item in todo), [item.error for item in todo]
    finally:
        group_commit.drafts_at_once, catalog_selectors.SKUS_FOR_SALE_HELD_SECONDS = at_once, held  # type: ignore[assignment]
        stop.set()
        for thread in threads:
            thread.join()
    return spent, waited, before


def busy_work(stop: threading.Event, cpu_seconds: float, sleep_seconds: float) -> None:
    """A request thread's share of the GIL: Python bytecode for `cpu_seconds` of CPU, then a wait that releases the
    GIL (its own I/O: the database, Redis, the socket) for `sleep_seconds`, again and again."""
    while not stop.is_set():
        end = time.thread_time() + cpu_seconds
        total = 0
        while time.thread_time() < end:
            for number in range(100):
                total += number * number
        time.sleep(sleep_seconds)


def run(args: argparse.Namespace, seeded: checkout.Seeded) -> None:
    from django.db import connection

    from kameng.accounts.models import User

    buyers = list(User.objects.order_by("pk").values_list("pk", flat=True))[: args.buyers]
    print(f"\nwriter per order, {args.orders} orders in batches of {args.batch}, {len(buyers)} buyers")
    profiler = cProfile.Profile(time.thread_time) if args.profile else None
    queries: list[bool] = []  # per statement: sent inside a pipeline

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        queries.append(bool(connection.connection.pgconn.pipeline_status))
        return execute(sql, params, many, context)

    if args.busy:
        print(f"  {args.busy} threads of busy work competing for the GIL while the batches are written, each "
              f"{args.busy_cpu_ms} ms of CPU then {args.busy_sleep_ms} ms of sleep")

    for round_ in range(args.rounds):
        queries.clear()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]

        last = profiler if round_ == args.rounds - 1 else None
        with connection.execute_wrapper(count):
            db, wall = aftercare.backend_cpu(pid), time.perf_counter()
            cpu, cycle, cycle_alone = batches_write(
                seeded, buyers, args.orders, args.batch, f"w{round_}", profiler=last, busy=args.busy,
                busy_cpu=args.busy_cpu_ms / 1000,
                busy_sleep=args.busy_sleep_ms / 1000, ab=args.ab)
            wall = time.perf_counter() - wall
            try:
                db = aftercare.backend_cpu(pid) - db
            except FileNotFoundError:  # the connection was replaced during the round (CONN_MAX_AGE)
                db = float("nan")
        n, batches = args.orders, args.orders / args.batch
        pipelines = sum(1 for before, now in zip([False, *queries], queries, strict=False) if now and not before)
        # BEGIN and COMMIT travel apart only the way before one message (every other batch with --ab).
        trips = queries.count(False) + pipelines + (batches if args.ab else 0)
        # With --ab the statements and round trips are the two halves' mean, the CPU and cycle the one message's.
        measured = (n + args.batch) // (2 * args.batch) * args.batch if args.ab else n
        print(f"  round {round_ + 1}: writer Python {cpu / measured * 1000:6.3f} ms   PostgreSQL "
              f"{db / n * 1000:6.3f} ms   wall {wall / n * 1000:6.3f} ms (warming included)   "
              f"{len(queries) / batches:5.2f} SQL (BEGIN, COMMIT apart) and {trips / batches:5.2f} round trips per "
              f"batch (with them)   cycle {cycle / measured * args.batch * 1000:6.2f} ms per batch = "
              f"{measured / cycle:6.0f} orders/s")
        if args.ab:
            alone = n - measured
            print(f"           the other batches, the way before one message: cycle "
                  f"{cycle_alone / alone * args.batch * 1000:6.2f} ms per batch = {alone / cycle_alone:6.0f} orders/s")
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.profile_lines)
        print(out.getvalue())


if __name__ == "__main__":
    sys.exit(main())
