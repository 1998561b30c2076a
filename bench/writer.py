"""What the group-commit writer costs per order, in one process (no server, no request threads).

Seeds a small fresh PostgreSQL database (`kameng_writer`, dropped at the end) as `checkout.py` does and writes
wallet-paid card-key orders through the writer's own `write_batch` in batches of `--batch` (about what 64 clients
give a server process), the aftercare off, buyers cycling through `--buyers`. Prints per order the writer thread's
Python CPU, its PostgreSQL backend's CPU and SQL statements, per round (the first warms the caches). Everything in
a batch runs on the writer's critical path: each millisecond here is a millisecond no other checkout is written.
`--profile` prints a cProfile (CPU time) of the last round.

    .venv/bin/python bench/writer.py [--orders 3000] [--batch 12] [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
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
                  profiler: cProfile.Profile | None) -> float:
    """Write `count` orders in batches; returns the CPU seconds of `write_batch` alone. Each checkout is queued as
    its request thread would queue it (wallet id looked up, the price rules warmed), outside the measurement."""
    from django.test.utils import override_settings

    from kameng.catalog.pricing import price_rules_warm
    from kameng.ledger.services import wallet_account_id
    from kameng.orders.group_commit import _Checkout, write_batch

    spent = 0.0
    with override_settings(KAMENG_ORDER_AFTERCARE=[]):
        for start in range(0, count, batch):
            todo = []
            for index in range(start, min(start + batch, count)):
                buyer_id = buyers[index % len(buyers)]
                price_rules_warm(buyer_id=buyer_id, sales_channel="api")
                todo.append(_Checkout(buyer_id=buyer_id, wallet_id=wallet_account_id(user_id=buyer_id),
                                      sku_id=seeded.sku_id, quantity=1, request_id=f"{tag}-{index}",
                                      sales_channel="api"))
            cpu = time.thread_time()
            if profiler is not None:
                profiler.enable()
            write_batch(todo)
            if profiler is not None:
                profiler.disable()
            spent += time.thread_time() - cpu
            assert all(item.order is not None for item in todo), [item.error for item in todo]
    return spent


def run(args: argparse.Namespace, seeded: checkout.Seeded) -> None:
    from django.db import connection

    from kameng.accounts.models import User

    buyers = list(User.objects.order_by("pk").values_list("pk", flat=True))[: args.buyers]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    print(f"\nwriter per order, {args.orders} orders in batches of {args.batch}, {len(buyers)} buyers")
    profiler = cProfile.Profile(time.thread_time) if args.profile else None
    queries: list[str] = []

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        queries.append(sql)
        return execute(sql, params, many, context)

    for round_ in range(args.rounds):
        queries.clear()

        last = profiler if round_ == args.rounds - 1 else None
        with connection.execute_wrapper(count):
            db, wall = aftercare.backend_cpu(pid), time.perf_counter()
            cpu = batches_write(seeded, buyers, args.orders, args.batch, f"w{round_}", profiler=last)
            db, wall = aftercare.backend_cpu(pid) - db, time.perf_counter() - wall
        n = args.orders
        print(f"  round {round_ + 1}: writer Python {cpu / n * 1000:6.3f} ms   PostgreSQL {db / n * 1000:6.3f} ms   "
              f"wall {wall / n * 1000:6.3f} ms (warming included)   {len(queries) / (n / args.batch):5.2f} SQL "
              "per batch")
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.profile_lines)
        print(out.getvalue())


if __name__ == "__main__":
    sys.exit(main())
