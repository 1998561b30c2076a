"""What the aftercare listeners cost per order, listener by listener, in one process (no worker, no server).

Seeds a small fresh PostgreSQL database (`kameng_aftercare_layers`, dropped at the end) as `checkout.py` does,
writes orders through the group commit's own `write_batch` in batches of `--batch` (the size a checkout batch has
at 64 clients) with the aftercare off, then runs every listener of `KAMENG_ORDER_AFTERCARE` over those batches —
each listener on orders it has never seen, as in production — and prints per order: the Python CPU of this
process and the CPU of its PostgreSQL backend (from /proc), and SQL statements. `--rounds` repeats it on fresh
orders (first round warms caches); `--profile LISTENER` prints a cProfile (CPU time) of one listener, or `all`
for `aftercare_run`.

    .venv/bin/python bench/aftercare.py [--orders 2000] [--batch 10] [--rounds 3] [--profile all]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import checkout  # the benchmark's environment and seeding helpers


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def orders_write(seeded: checkout.Seeded, buyers: list[int], count: int, batch: int, tag: str) -> list[list[int]]:
    """`count` wallet-paid orders of one key each, written by the group commit in batches of `batch`."""
    from django.test.utils import override_settings

    from kameng.ledger.services import wallet_account_id
    from kameng.orders.group_commit import _Checkout, write_batch

    batches = []
    with override_settings(KAMENG_ORDER_AFTERCARE=[]):
        for start in range(0, count, batch):
            todo = [_Checkout(buyer_id=buyers[(start + i) % len(buyers)],
                              wallet_id=wallet_account_id(user_id=buyers[(start + i) % len(buyers)]),
                              sku_id=seeded.sku_id, quantity=1, request_id=f"{tag}-{start + i}")
                    for i in range(min(batch, count - start))]
            write_batch(todo)
            assert all(item.order is not None for item in todo), [item.error for item in todo]
            batches.append([item.order.pk for item in todo if item.order is not None])
    return batches


def measure(label: str, call: Callable[..., object], batches: list[list[int]], pid: int,
            profiler: cProfile.Profile | None = None) -> tuple[float, float, float]:
    from django.db import connection

    orders = sum(len(batch) for batch in batches)
    queries: list[str] = []

    def count(execute: Callable[..., object], sql: str, params: object, many: bool, context: object) -> object:
        queries.append(sql)  # a wrapper, not CaptureQueriesContext: that would format every statement (debug)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        cpu, db = time.process_time(), backend_cpu(pid)
        if profiler is not None:
            profiler.enable()
        for batch in batches:
            call(order_ids=batch, event="delivered")
        if profiler is not None:
            profiler.disable()
        cpu, db = time.process_time() - cpu, backend_cpu(pid) - db
    python_ms, db_ms, sql = cpu / orders * 1000, db / orders * 1000, len(queries) / orders
    print(f"  {label:48s} Python {python_ms:6.3f} ms   PostgreSQL {db_ms:6.3f} ms   {sql:5.2f} SQL per order")
    return python_ms, db_ms, sql


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--buyers", type=int, default=256)
    parser.add_argument("--profile", default="", help="a listener's dotted path, or `all` for aftercare_run")
    parser.add_argument("--profile-lines", type=int, default=40)
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--database", default="kameng_aftercare_layers")
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()
    args.keys = args.orders * (2 * args.rounds + 1) + 100
    args.worker = False
    return checkout.in_process(args, run)


def run(args: argparse.Namespace, seeded: checkout.Seeded) -> None:
    from django.conf import settings
    from django.db import connection
    from django.utils.module_loading import import_string

    from kameng.accounts.models import User
    from kameng.orders.aftercare import aftercare_run

    buyers = list(User.objects.order_by("pk").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    paths = list(settings.KAMENG_ORDER_AFTERCARE)
    print(f"\naftercare per order, {args.orders} orders in batches of {args.batch}, {len(paths)} listeners")
    for round_ in range(args.rounds):
        print(f" round {round_ + 1}")
        batches = orders_write(seeded, buyers, args.orders, args.batch, f"r{round_}")
        total = [0.0, 0.0, 0.0]
        for path in paths:
            figures = measure(path.rsplit(".", 1)[-1], import_string(path), batches, pid)
            total = [a + b for a, b in zip(total, figures, strict=True)]
        print(f"  {'(sum)':48s} Python {total[0]:6.3f} ms   PostgreSQL {total[1]:6.3f} ms   {total[2]:5.2f} SQL")
        batches = orders_write(seeded, buyers, args.orders, args.batch, f"r{round_}-all")
        measure("aftercare_run (all listeners, fresh orders)", aftercare_run, batches, pid)
    if args.profile:
        batches = orders_write(seeded, buyers, args.orders, args.batch, "profile")
        profiler = cProfile.Profile(time.process_time)
        call = aftercare_run if args.profile == "all" else import_string(args.profile)
        measure(f"profiled: {args.profile}", call, batches, pid, profiler)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.profile_lines)
        print(out.getvalue())


if __name__ == "__main__":
    sys.exit(main())
