"""Flash sale: 1,000 buyers race through the Open API v1 for the 500 card keys of one SKU.

The buyers are 1,000 approved resellers, each with its own API key and funded wallet (so each is a different
wallet and a different key, as 1,000 real buyers would be), each sending ONE signed POST /openapi/v1/orders for
quantity 1 at the same moment. What must hold, checked and printed: exactly 500 answers 201 with one key each,
no key delivered twice, every other answer a clean 409 `sold_out` (`{"code", "message"}`), no 5xx and no
connection error, every winner's wallet debited exactly the price and every loser's untouched, the ledger
invariants — and the time from the release of the 1,000 requests to the last answer (target: ≤ 2 s).

The load generator is asyncio over raw HTTP/1.1 (standard library): all 1,000 connections are opened first, the
requests are signed ahead, then written to their sockets in one pass. The server is bench/checkout.py's (granian WSGI
by default: 2 workers × 24 threads, group commit on, Redis cache, DEBUG off); a short warm-up on another SKU by
other resellers (two per server thread, sent together: very likely one for each thread) starts the workers' lazy
parts (the group-commit writer, the threads' database connections) before the race, as a shop already selling has
them.

    .venv/bin/python bench/flash_sale.py [--buyers 1000] [--keys 500] [--server granian|gunicorn]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.checkout import bench_environment, server_command, server_start  # noqa: E402
from bench.common import (  # noqa: E402
    cpu_per_request,
    cpu_seconds,
    filled_tables_analyze,
    run_framed,
    seeded_tables_analyze,
    server_arguments,
)
from bench.common import process_stop as server_stop  # noqa: E402
from bench.openapi_support import ORDERS_PATH, KeyPair, print_checks, signed_order  # noqa: E402

PRICE = Decimal("9.50")
FUNDS = Decimal("100.00")

@dataclass
class Answer:
    status: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    finished: float = 0.0

async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    for attempt in range(50):
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05 * (attempt + 1))
    return await asyncio.open_connection("127.0.0.1", port)

async def _answer(reader: asyncio.StreamReader, timeout: float) -> Answer:
    """Read one answer (its request already sent), noting when it was read."""
    answer = Answer()
    try:
        async with asyncio.timeout(timeout):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            answer.status = int(lines[0].split()[1])
            length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                           if line.lower().startswith("content-length:")), 0)
            body = await reader.readexactly(length) if length else b""
        answer.body = json.loads(body) if body else {}
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
        answer.error = f"{type(error).__name__}: {error}"
    answer.finished = time.monotonic()
    return answer

def _raw_request(body: bytes, headers: dict[str, str], port: int) -> bytes:
    head = [f"POST {ORDERS_PATH} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body

async def race(requests: list[bytes], port: int, timeout: float) -> tuple[list[Answer], float, float]:
    """Open one connection per request, then send them all at once; (answers, release time, connect seconds)."""
    started = time.monotonic()
    connections = []
    for offset in range(0, len(requests), 100):  # in waves: the listen backlog is finite
        connections += await asyncio.gather(*(_connect(port) for _ in requests[offset:offset + 100]))
    connected = time.monotonic() - started
    released = time.monotonic()
    # Every request handed to the kernel in one pass before any answer is awaited: sent from one task each (a write,
    # a drain, a timeout task), 1,000 of them kept this process's loop busy 0.3-0.45 s on two busy cores, answers
    # already written by the server waiting all that time to be read.
    for (_, writer), request in zip(connections, requests, strict=True):
        writer.write(request)
    answers = await asyncio.gather(*(_answer(reader, timeout) for reader, _ in connections))
    for _, writer in connections:
        writer.close()
    return list(answers), released, connected

def seed(args: argparse.Namespace) -> tuple[int, int, list[KeyPair], list[KeyPair]]:
    import django

    django.setup()
    from bench.openapi_support import seed_resellers, seed_sku

    sku_id, _, _ = seed_sku(keys=args.keys, price=PRICE, name="秒杀点卡")
    warm_sku_id, _, _ = seed_sku(keys=args.warmup * 2, price=PRICE, name="预热点卡")
    started = time.monotonic()
    buyers = seed_resellers(count=args.buyers, funds=FUNDS)
    warmers = seed_resellers(count=args.warmup, funds=FUNDS)
    print(f"  {args.buyers:,} resellers with keys and funded wallets in {time.monotonic() - started:.1f} s; "
          f"{args.keys:,} keys on SKU #{sku_id}")
    seeded_tables_analyze()
    return sku_id, warm_sku_id, buyers, warmers

def verify(args: argparse.Namespace, sku_id: int, buyers: list[KeyPair], answers: list[Answer],
           settle_seconds: float) -> bool:
    from django.db import connection

    from kameng.ledger.models import Account
    from kameng.ledger.selectors import ledger_problems
    from kameng.ledger.services import wallet_account_id

    won = [(buyer, answer) for buyer, answer in zip(buyers, answers, strict=True) if answer.status == 201]
    lost = [answer for answer in answers if answer.status == 409]
    keys = [key for _, answer in won for key in answer.body.get("keys", [])]
    statuses: dict[str, int] = {}
    for answer in answers:
        label = str(answer.status) if not answer.error else answer.error.split(":")[0]
        statuses[label] = statuses.get(label, 0) + 1
    print(f"  answers by status: {dict(sorted(statuses.items()))}")
    winners = {buyer.user_id for buyer, _ in won}
    balances = dict(Account.objects.filter(pk__in=[wallet_account_id(user_id=b.user_id) for b in buyers])
                    .values_list("owner_id", "balance"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT order_id) FROM inventory_cardkey WHERE sku_id = %s "
                       "AND status = 'sold'", [sku_id])
        sold, orders_with_keys = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM orders_order WHERE sku_id = %s", [sku_id])
        (orders,) = cursor.fetchone()
    problems = ledger_problems()
    connection.close()
    expected = min(args.keys, args.buyers)
    checks = {
        f"exactly {expected} delivered (201, one key each)": len(won) == expected and len(keys) == expected,
        "no key delivered twice": len(set(keys)) == len(keys),
        f"{args.buyers - expected} losers, each a clean 409 sold_out": (
            len(lost) == args.buyers - expected
            and all(answer.body.get("code") == "sold_out" and set(answer.body) == {"code", "message"}
                    for answer in lost)),
        "no 5xx, no connection error": all(answer.status and answer.status < 500 and not answer.error
                                           for answer in answers),
        "the database agrees: orders == sold keys == winners": orders == sold == orders_with_keys == len(won),
        "winners debited exactly the price, losers untouched": all(
            balances.get(buyer.user_id) == (FUNDS - PRICE if buyer.user_id in winners else FUNDS)
            for buyer in buyers),
        "ledger check passes": not problems,
    }
    ok = print_checks(checks)
    # A figure, not an invariant: on a busy machine it says more about the machine than about the code.
    print(f"  [{'met' if settle_seconds <= 2.0 else 'missed'}] target: all settled in ≤ 2 s "
          f"(here {settle_seconds:.2f} s)")
    return ok

def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    server_arguments(parser, port=8733, database="kameng_bench_flash")
    parser.add_argument("--buyers", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=None,
                        help="orders on another SKU, by other resellers, sent together before the race (default: "
                             "two per server thread, so that every thread has opened its database connection)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a buyer waits for its answer")
    args = parser.parse_args()
    if args.warmup is None:
        threads = args.granian_threads * args.granian_workers if args.server == "granian" else (
            args.gunicorn_threads * args.gunicorn_workers)
        args.warmup = 2 * threads
    return args

def main() -> int:
    args = parse_arguments()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.buyers * 2 + 256)), hard))
    env = bench_environment(args)
    env.setdefault("GRANIAN_BACKLOG", str(max(2048, args.buyers * 2)))
    print(f"kameng flash sale — {args.buyers:,} buyers, {args.keys:,} keys, {os.cpu_count()} CPUs, "
          f"database {args.database}")

    def body(workdir: Path, start_worker: Callable[[], subprocess.Popen[bytes] | None]) -> bool:
        sku_id, warm_sku_id, buyers, warmers = seed(args)
        start_worker()
        print(f"\n== {args.server}: {' '.join(server_command(args.server, args)[1:-1])}")
        process = server_start(args.server, args, env, workdir / "server.log", {})
        try:
            warm = [_raw_request(*signed_order(key, sku_id=warm_sku_id, request_no=f"warm-{index}"), args.port)
                    for index, key in enumerate(warmers)]
            warm_answers, _, _ = asyncio.run(race(warm, args.port, args.timeout))
            print(f"  warm-up: {len(warm_answers)} orders on another SKU, statuses "
                  f"{sorted({answer.status for answer in warm_answers})}")
            if any(answer.status != 201 for answer in warm_answers):
                print("  the warm-up did not go through: not racing on a server that cannot sell")
                return False
            filled_tables_analyze(args.pg_url, args.database)
            requests = [_raw_request(*signed_order(key, sku_id=sku_id, request_no=f"flash-{index}"), args.port)
                        for index, key in enumerate(buyers)]
            before = cpu_seconds(process_group=process.pid, database=args.database)
            answers, released, connected = asyncio.run(race(requests, args.port, args.timeout))
            after = cpu_seconds(process_group=process.pid, database=args.database)
        finally:
            server_stop(process)
        settle = max(answer.finished for answer in answers) - released
        ordered = sorted(answer.finished - released for answer in answers if answer.status == 201)
        server_ms, postgres_ms = cpu_per_request(before, after, args.buyers)
        print(f"  {args.buyers:,} connections opened in {connected:.2f} s, then released together")
        print(f"  settled in {settle:.2f} s: last key delivered at {ordered[-1] if ordered else 0:.2f} s, "
              f"median answer {sorted(a.finished - released for a in answers)[len(answers) // 2]:.2f} s")
        for status in (201, 409):
            times = sorted(answer.finished - released for answer in answers if answer.status == status)
            if times:
                print(f"  {status} answers at p10 / p50 / p90 / last: " + " / ".join(
                    f"{times[min(len(times) - 1, int(len(times) * share))]:.2f}" for share in (0.1, 0.5, 0.9, 1.0))
                      + " s")
        print(f"  CPU for the race: server {after[0] - before[0]:.2f} s, PostgreSQL {after[1] - before[1]:.2f} s "
              f"({server_ms:.2f} + {postgres_ms:.2f} ms per request)")
        log = [line for line in (workdir / "server.log").read_text(errors="replace").splitlines()
               if "No directory at" not in line and "mw_instance" not in line and "threads" not in line]
        if log:
            print(f"  server log: {len(log)} lines; the tail:\n    " + "\n    ".join(log[-8:]))
        print("\n== verification")
        ok = verify(args, sku_id, buyers, answers, settle)
        print(f"\n  invariants: {'all hold' if ok else 'VIOLATED'}")
        return ok

    return run_framed(args, env, prefix="kameng-bench-flash-", body=body)


if __name__ == "__main__":
    sys.exit(main())
