"""The CPU one Open API v1 request costs the server, in process: no HTTP server, no load generator, no other
client — a WSGI call loop on Django's own handler, on PostgreSQL with the production settings of the benchmarks
(DEBUG off, Redis cache, group commit on), so the figure is the request path's own CPU and holds on a loaded
machine where throughput does not.

    .venv/bin/python bench/openapi_profile.py [--requests 2000] [--threads 1] [--profile 25]
                                              [--database kameng_bench_oaprof]

First the purchase service alone (purchase_create, as POST /orders calls it: the checkout's own CPU), then three
paths, each measured as process CPU time per request (user + system of this process; PostgreSQL's backend
is not counted) with the SQL statements one request sends:
  - order: a signed POST /orders that buys one key (a new request_no and nonce each);
  - sold_out: the same against a SKU with no key left (the flash sale's loser);
  - balance: a signed GET /balance (the verifier alone, nearly);
  - cold_sold_out: sold_out, each request from another reseller's key this process has not seen yet (the flash
    sale's 1,000 buyers: the key's first request).
`--paths` picks some (comma-separated), `--rounds R` measures them R times, interleaved. `--threads T` keeps T
requests in flight (threads of this process: the group commit then batches them, as under load). `--profile N`
prints cProfile's N most expensive functions of `--profile-path` (default order), timed by the request thread's
CPU clock.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402

from bench.openapi_support import KeyPair, sign  # noqa: E402


def environ_for(key: KeyPair, method: str, path: str, body: bytes, nonce: str) -> dict[str, Any]:
    timestamp = str(int(time.time()))
    return {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_X_KAMENG_KEY": key.key_id, "HTTP_X_KAMENG_TIMESTAMP": timestamp, "HTTP_X_KAMENG_NONCE": nonce,
        "HTTP_X_KAMENG_SIGNATURE": sign(secret=key.secret, method=method, path=path, timestamp=timestamp,
                                        nonce=nonce, body=body),
    }


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    from bench.openapi_support import seed_resellers, seed_sku
    from kameng.accounts.paypin import NO_PIN
    from kameng.catalog.pricing import SALES_CHANNEL_OPENAPI
    from kameng.purchases.services import PayBy, PaymentChoice, purchase_create

    handler = WSGIHandler()
    key = seed_resellers(count=1, funds=Decimal("100000000.00"))[0]
    sku_id = seed_sku(keys=2 * args.requests + 400, price=Decimal("9.50"), name="剖析")[0]
    empty_sku_id = seed_sku(keys=0, price=Decimal("9.50"), name="售罄")[0]
    statuses: dict[int, int] = {}

    def call(environ: dict[str, Any]) -> None:
        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            code = int(status.split(maxsplit=1)[0])
            statuses[code] = statuses.get(code, 0) + 1

        response = handler(environ, start_response)
        b"".join(response)
        response.close()  # type: ignore[attr-defined]

    counter = [0]

    def order_environ(sku: int) -> dict[str, Any]:
        counter[0] += 1
        body = f'{{"request_no": "P{counter[0]:09d}", "sku_id": {sku}, "quantity": 1}}'.encode()
        return environ_for(key, "POST", "/openapi/v1/orders", body, f"nonce-{os.getpid()}-{counter[0]:012d}")

    def balance_environ() -> dict[str, Any]:
        counter[0] += 1
        return environ_for(key, "GET", "/openapi/v1/balance", b"", f"nonce-{os.getpid()}-{counter[0]:012d}")

    def service_call(number: int) -> None:  # the purchase service alone: what the checkout itself costs
        purchase_create(buyer_id=key.user_id, sku_id=sku_id, quantity=1, payment=payment,
                        request_id=f"S{os.getpid()}-{number:09d}", sales_channel=SALES_CHANNEL_OPENAPI)

    payment = PaymentChoice(PayBy.WALLET, pin_settings=NO_PIN)
    if "service" in args.paths:
        started = time.process_time()
        if args.threads > 1:
            with ThreadPoolExecutor(max_workers=args.threads) as pool:
                list(pool.map(service_call, range(args.requests)))
        else:
            for number in range(args.requests):
                service_call(number)
        print(f"{'service':9s} {(time.process_time() - started) / args.requests * 1000:6.2f} ms CPU/order "
              f"(purchase_create alone, no HTTP)")
    cold_keys = iter(seed_resellers(count=args.rounds * (args.requests + 11) + 300, funds=Decimal("100.00"))
                     if "cold_sold_out" in args.paths else [])

    def cold_environ() -> dict[str, Any]:  # a key this process has not seen yet, as each flash-sale buyer's is
        counter[0] += 1
        body = f'{{"request_no": "C{counter[0]:09d}", "sku_id": {empty_sku_id}, "quantity": 1}}'.encode()
        return environ_for(next(cold_keys), "POST", "/openapi/v1/orders", body,
                           f"nonce-{os.getpid()}-{counter[0]:012d}")

    every = {"order": lambda: order_environ(sku_id), "sold_out": lambda: order_environ(empty_sku_id),
             "balance": balance_environ, "cold_sold_out": cold_environ}
    paths = {name: every[name] for name in args.paths if name in every}
    statements: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    for name, make in [item for _round in range(args.rounds) for item in paths.items()]:
        for _ in range(50 if name != "cold_sold_out" else 10):  # warm-up: imports, caches, prepared plans
            call(make())
        statements.clear()
        with connection.execute_wrapper(count):
            call(make())
        environs = [make() for _ in range(args.requests)]  # signed ahead: the HMAC is the client's
        statuses.clear()
        started = time.process_time()
        if args.threads > 1:  # concurrent requests: the group commit batches what is in flight together
            with ThreadPoolExecutor(max_workers=args.threads) as pool:
                list(pool.map(call, environs))
        else:
            for environ in environs:
                call(environ)
        cpu = time.process_time() - started
        print(f"{name:9s} {cpu / args.requests * 1000:6.2f} ms CPU/request  {len(statements)} SQL statements  "
              f"statuses {dict(sorted(statuses.items()))}")
        if args.verbose:
            for sql in statements:
                print("    ", sql[:160])
    if args.profile:
        # The request thread's own CPU time (time.thread_time), not wall time: a wait for PostgreSQL, Redis or the
        # group-commit writer costs nothing here, as it costs the server no CPU.
        environs = [every[args.profile_path]() for _ in range(min(args.requests, 300))]
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        for environ in environs:
            call(environ)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(args.profile)
        stats.sort_stats("tottime").print_stats(args.profile)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="requests in flight at once (default 1)")
    parser.add_argument("--paths", type=lambda text: text.split(","),
                        default=["service", "order", "sold_out", "balance", "cold_sold_out"],
                        help="what to measure, comma-separated (default service,order,sold_out,balance,cold_sold_out)")
    parser.add_argument("--rounds", type=int, default=1, help="measure the paths this many times, interleaved")
    parser.add_argument("--profile", type=int, default=0)
    parser.add_argument("--profile-path", choices=["order", "sold_out", "balance", "cold_sold_out"], default="order",
                        help="the path --profile profiles (default order)")
    parser.add_argument("--verbose", action="store_true", help="print the SQL of one request of each path")
    parser.add_argument("--pg-url", default=common.DEFAULT_PG_URL)
    parser.add_argument("--database", default="kameng_bench_oaprof")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run(args)
        return 0
    import subprocess

    env = common.bench_environment(pg_url=args.pg_url, database=args.database, REDIS_URL=args.redis_url,
                                   CACHE_KEY_PREFIX=f"kameng-oaprof-{os.getpid()}", CELERY_TASK_ALWAYS_EAGER="1",
                                   KAMENG_OPENAPI_RATE_PER_MINUTE="0")
    common.database_create(args.pg_url, args.database)
    try:
        common.migrate(env)
        return subprocess.run([common.PYTHON, __file__, *sys.argv[1:], "--child"], env=env, check=False).returncode
    finally:
        common.database_drop(args.pg_url, args.database)


if __name__ == "__main__":
    sys.exit(main())
