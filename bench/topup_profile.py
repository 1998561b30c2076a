"""What the worker's direct top-up steps cost per order, step by step, in one process (no worker, no simulator).

Seeds a fresh PostgreSQL database (`kameng_topup_profile`, dropped at the end) as `bench/topup.py` does (one 话费
SKU, one Fulu supplier, paid orders with a phone number), then runs the worker's own per-order code over those
orders in batches, as its threads run it during `make bench-topup`, with the supplier's answers made up in place of
the calls:

  fulfil        `orders_fulfil` (the `fulfil_orders` task): route, attempt RECORDED, order FULFILLING
  claim submit  the dispatcher's submit claim and the request built for each call (`_claims_submit`)
  write submit  the submit answers (PROCESSING, a supplier order id) written (`attempt_outcomes_apply`)
  claim query   the query claim of the attempts a callback made due (`_claims_query`)
  write query   the query answers (SUCCEEDED, an operator serial) written: order DELIVERED, hold → revenue

and prints per order for each step: the Python CPU of this process, the CPU of its PostgreSQL backend (from /proc)
and the SQL statements. `--rounds` repeats it on fresh orders (the first round warms caches); `--profile STEP`
prints a cProfile (CPU time) of one step in the last round.

    .venv/bin/python bench/topup_profile.py [--orders 2000] [--rounds 3] [--fulfil-batch 50] [--claim-batch 50]
                                            [--write-batch 50] [--profile fulfil]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import topup  # the benchmark's environment and seeding
from common import DEFAULT_PG_URL, database_create, database_drop, django_start, migrate

STEPS = ("fulfil", "claim submit", "write submit", "claim query", "write query")


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batches_of(ids: Sequence[int], size: int) -> list[list[int]]:
    return [list(ids[start:start + size]) for start in range(0, len(ids), size)]


class Step:
    """CPU (this process, its backend) and statements of one step, summed over its batches."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.python = self.database = 0.0
        self.statements = 0

    def run(self, call: Callable[[], Any], profiler: cProfile.Profile | None = None) -> Any:
        from django.db import connection

        def count(execute: Callable[..., object], sql: str, params: object, many: bool, context: object) -> object:
            self.statements += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            cpu, db = time.process_time(), backend_cpu(self.pid)
            if profiler is not None:
                profiler.enable()
            result = call()
            if profiler is not None:
                profiler.disable()
            self.python += time.process_time() - cpu
            self.database += backend_cpu(self.pid) - db
        return result


def one_round(args: argparse.Namespace, order_ids: list[int], pid: int, profile: str) -> dict[str, Step]:
    from django.db import connection

    from kameng.orders.fulfilment import orders_fulfil
    from kameng.suppliers import dispatch
    from kameng.suppliers.connectors.base import Outcome, TopupAnswer
    from kameng.suppliers.models import TopupAttempt
    from kameng.suppliers.topup import OutcomeToWrite, Via, attempt_outcomes_apply

    steps = {name: Step(pid) for name in STEPS}
    profilers = {name: cProfile.Profile(time.process_time) if name == profile else None for name in STEPS}
    handed: list[int] = []
    real_dispatch = dispatch.topup_dispatch
    dispatch.topup_dispatch = lambda *, attempt_ids: handed.extend(attempt_ids)  # the dispatcher's queue
    try:
        for batch in batches_of(order_ids, args.fulfil_batch):
            steps["fulfil"].run(lambda batch=batch: orders_fulfil(order_ids=batch), profilers["fulfil"])
    finally:
        dispatch.topup_dispatch = real_dispatch
    assert len(handed) == len(order_ids), (len(handed), len(order_ids))
    calls: list[Any] = []
    for batch in batches_of(handed, args.claim_batch):
        calls += steps["claim submit"].run(lambda batch=batch: dispatch._claims_submit(batch),
                                           profilers["claim submit"])
    assert len(calls) == len(order_ids)
    answers = [OutcomeToWrite(attempt_id=call.attempt_id, order_id=call.order_id, via=Via.SUBMIT, has_callbacks=True,
                              answer=TopupAnswer(outcome=Outcome.PROCESSING, supplier_order_id=f"F{call.attempt_id}"))
               for call in calls]
    for start in range(0, len(answers), args.write_batch):
        chunk = answers[start:start + args.write_batch]
        steps["write submit"].run(lambda chunk=chunk: attempt_outcomes_apply(outcomes=chunk), profilers["write submit"])
    # The callbacks' prompts (the callback server's work, not timed here): every attempt due now.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE suppliers_topupattempt SET next_check_at = now() WHERE id = ANY(%s)", [handed])
    calls = []
    for batch in batches_of(handed, args.claim_batch):
        calls += steps["claim query"].run(lambda batch=batch: dispatch._claims_query(batch), profilers["claim query"])
    assert len(calls) == len(order_ids)
    answers = [OutcomeToWrite(attempt_id=call.attempt_id, order_id=call.order_id, via=Via.QUERY, has_callbacks=True,
                              answer=TopupAnswer(outcome=Outcome.SUCCEEDED, supplier_order_id=f"F{call.attempt_id}",
                                                 operator_serial=f"OP{call.attempt_id}"))
               for call in calls]
    for start in range(0, len(answers), args.write_batch):
        chunk = answers[start:start + args.write_batch]
        steps["write query"].run(lambda chunk=chunk: attempt_outcomes_apply(outcomes=chunk), profilers["write query"])
    delivered = TopupAttempt.objects.filter(pk__in=handed, status="succeeded").count()
    assert delivered == len(order_ids), (delivered, len(order_ids))
    if profile:
        profiler = profilers[profile]
        assert profiler is not None
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.profile_lines)
        print(out.getvalue())
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2000, help="orders per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fulfil-batch", type=int, default=50)
    parser.add_argument("--claim-batch", type=int, default=50)
    parser.add_argument("--write-batch", type=int, default=50)
    parser.add_argument("--profile", default="", choices=["", *STEPS])
    parser.add_argument("--profile-lines", type=int, default=45)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--database", default="kameng_topup_profile")
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()
    seeding = argparse.Namespace(orders=args.orders * args.rounds, sim_port=8151, web_port=8150, threads=256,
                                 broker_url="redis://127.0.0.1:6379/12", pg_url=args.pg_url, database=args.database)
    env = topup.bench_environment(seeding)
    database_create(args.pg_url, args.database)
    try:
        migrate(env, timeout=600)
        django_start(env)
        _, order_ids = topup.seed(seeding)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        print(f"\nworker steps per order, {args.orders} orders a round, batches: fulfil {args.fulfil_batch}, claims "
              f"{args.claim_batch}, answers {args.write_batch}")
        for round_, ids in enumerate(batches_of(order_ids, args.orders)):
            last = round_ == args.rounds - 1
            steps = one_round(args, ids, pid, args.profile if last else "")
            print(f" round {round_ + 1}")
            total = [0.0, 0.0, 0.0]
            for name, step in steps.items():
                figures = [step.python * 1000 / len(ids), step.database * 1000 / len(ids), step.statements / len(ids)]
                total = [a + b for a, b in zip(total, figures, strict=True)]
                print(f"  {name:14s} Python {figures[0]:6.3f} ms   PostgreSQL {figures[1]:6.3f} ms   "
                      f"{figures[2]:5.2f} SQL per order")
            print(f"  {'(sum)':14s} Python {total[0]:6.3f} ms   PostgreSQL {total[1]:6.3f} ms   {total[2]:5.2f} SQL")
        connection.close()
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_database:
            database_drop(args.pg_url, args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
