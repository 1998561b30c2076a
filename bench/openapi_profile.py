"""The CPU one Open API v1 request costs the server, in process: no HTTP server, no load generator, no other
client — a WSGI call loop on Django's own handler, on PostgreSQL with the production settings of the benchmarks
(DEBUG off, Redis cache, group commit on), so the figure is the request path's own CPU and holds on a loaded
machine where throughput does not.

    .venv/bin/python bench/openapi_profile.py [--requests 2000] [--threads 1] [--profile 25]
                                              [--buyers 1000] [--rate-per-minute 0]
                                              [--database kameng_bench_oaprof]

First the purchase service alone (purchase_create, as POST /orders calls it: the checkout's own CPU), then three
paths, each measured as process CPU time per request (user + system of this process; PostgreSQL's backend
is not counted) with the SQL statements one request sends:
  - order: a signed POST /orders that buys one key (a new request_no and nonce each);
  - sold_out: the same against a SKU with no key left (the flash sale's loser);
  - balance: a signed GET /balance (the verifier alone, nearly);
  - cold_sold_out: sold_out, each request from another reseller's key this process has not seen yet (the flash
    sale's 1,000 buyers: the key's first request);
  - cold_order: order, each request a first-time buyer (the flash sale's winners): a reseller this process has not
    seen — its key, its wallet's account id and its member level all read for the first time.
  - cold_race: the flash sale in process: `--buyers` first-time buyers race for `--buyers / 2` keys of a fresh SKU
    (winners 201, losers 409 sold_out — with `--threads` in flight, the batch in which the keys run out and the
    losers after it).
The cold paths send `--buyers N` requests (default 1000), each from its own reseller. Each path also prints the SQL
statements (every thread's connection, the group-commit writer's too) and the Redis commands and round trips of its
timed run, per request. `--rate-per-minute` is the per-key rate limit
of the run (0, the default: off; the flash sale runs with the production 3000, and any value above the requests a
key sends measures the counter without refusing). `--no-aftercare` leaves out the delivered orders' listeners, which
run in this process here (tasks are eager) but on the Celery worker in bench-flash and bench-openapi.
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


class Tally:
    """SQL statements (every connection of this process: the request threads' and the group-commit writer's) and
    Redis commands and round trips, counted only between start() and stop(); patched in once, at class level (a
    counter's increment: a few hundred nanoseconds a statement, beside the milliseconds measured)."""

    def __init__(self) -> None:
        self.counting = False
        self.keep_sql = False
        self.sql: list[str] = []
        self.statements = self.redis_commands = self.redis_round_trips = 0

    def start(self, *, keep_sql: bool = False) -> None:
        self.sql, self.keep_sql = [], keep_sql
        self.statements = self.redis_commands = self.redis_round_trips = 0
        self.counting = True

    def stop(self) -> None:
        self.counting = False

    def install(self) -> None:
        from django.db.backends.utils import CursorWrapper
        from redis.client import Pipeline, Redis
        from redis.connection import AbstractConnection

        tally = self
        execute, executemany = CursorWrapper.execute, CursorWrapper.executemany
        command, pipeline_execute = Redis.execute_command, Pipeline.execute
        send = AbstractConnection.send_packed_command

        def counted_execute(cursor: Any, sql: str, params: Any = None) -> Any:
            if tally.counting:
                tally.statements += 1
                if tally.keep_sql:
                    tally.sql.append(sql)
            return execute(cursor, sql, params)

        def counted_executemany(cursor: Any, sql: str, param_list: Any) -> Any:
            if tally.counting:
                tally.statements += 1
            return executemany(cursor, sql, param_list)

        def counted_command(client: Any, *args: Any, **options: Any) -> Any:
            if tally.counting:
                tally.redis_commands += 1
            return command(client, *args, **options)

        def counted_pipeline(pipe: Any, *args: Any, **options: Any) -> Any:
            if tally.counting:
                tally.redis_commands += len(pipe.command_stack)
            return pipeline_execute(pipe, *args, **options)

        def counted_send(connection: Any, *args: Any, **options: Any) -> Any:
            if tally.counting:
                tally.redis_round_trips += 1
            return send(connection, *args, **options)

        CursorWrapper.execute = counted_execute  # type: ignore[method-assign, assignment]
        CursorWrapper.executemany = counted_executemany  # type: ignore[method-assign, assignment]
        Redis.execute_command = counted_command  # type: ignore[method-assign, assignment]
        Pipeline.execute = counted_pipeline  # type: ignore[method-assign, assignment]
        AbstractConnection.send_packed_command = counted_send  # type: ignore[method-assign, assignment]


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

    from bench.openapi_support import seed_resellers, seed_sku
    from kameng.accounts.paypin import NO_PIN
    from kameng.catalog.pricing import SALES_CHANNEL_OPENAPI
    from kameng.ledger.services import forget_cached_account_ids
    from kameng.membership.pricing import membership_caches_clear
    from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
    from kameng.resellers.apikeys import api_keys_forget

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
    warm = max(10, 2 * args.threads)  # the warm-up requests of a cold path
    cold_count = args.rounds * (args.buyers + warm) + (min(args.requests, 300) if args.profile else 0)
    cold_keys = iter(seed_resellers(count=cold_count, funds=Decimal("100.00"))
                     if "cold_sold_out" in args.paths else [])
    new_buyers = iter(seed_resellers(count=cold_count + (args.rounds * warm if "cold_race" in args.paths else 0),
                                     funds=Decimal("100.00"))
                      if {"cold_order", "cold_race"} & set(args.paths) else [])
    racers = iter(seed_resellers(count=args.rounds * args.buyers, funds=Decimal("100.00"))
                  if "cold_race" in args.paths else [])
    cold_sku_id = seed_sku(keys=cold_count + args.rounds * warm + 100, price=Decimal("9.50"), name="新买家")[0] \
        if {"cold_order", "cold_race"} & set(args.paths) else 0
    race_skus = iter([seed_sku(keys=args.buyers // 2, price=Decimal("9.50"), name="秒杀")[0]
                      for _ in range(args.rounds)] if "cold_race" in args.paths else [])
    race_sku = [0]
    # Seeding looked the new wallets up in this process: forget them, as a server process has never seen them.
    forget_cached_account_ids()
    api_keys_forget()
    membership_caches_clear()

    def cold_environ(keys: Any, sku: int) -> dict[str, Any]:  # a reseller this process has not seen yet
        counter[0] += 1
        body = f'{{"request_no": "C{counter[0]:09d}", "sku_id": {sku}, "quantity": 1}}'.encode()
        return environ_for(next(keys), "POST", "/openapi/v1/orders", body, f"nonce-{os.getpid()}-{counter[0]:012d}")

    every = {"order": lambda: order_environ(sku_id), "sold_out": lambda: order_environ(empty_sku_id),
             "balance": balance_environ, "cold_sold_out": lambda: cold_environ(cold_keys, empty_sku_id),
             "cold_order": lambda: cold_environ(new_buyers, cold_sku_id),
             "cold_race": lambda: cold_environ(racers, race_sku[0])}
    paths = {name: every[name] for name in args.paths if name in every}
    tally = Tally()
    tally.install()

    # One pool for the whole run: a server's request threads live on, and each thread's first request opens its
    # own cache client and database connection (Django's are per thread), which no path should be charged for.
    pool = ThreadPoolExecutor(max_workers=args.threads) if args.threads > 1 else None

    def send(environs: list[dict[str, Any]]) -> None:
        if pool is not None:  # concurrent requests: the group commit batches what is in flight together
            list(pool.map(call, environs))
        else:
            for environ in environs:
                call(environ)

    for name, make in [item for _round in range(args.rounds) for item in paths.items()]:
        cold = name.startswith("cold_")
        if name == "cold_race":  # warmed up by new buyers of another SKU: the race's keys are all there at the start
            race_sku[0] = next(race_skus)
            send([every["cold_order"]() for _ in range(warm)])
        else:
            send([make() for _ in range(warm if cold else max(50, 2 * args.threads))])  # caches, connections
        requests = args.buyers if cold else args.requests
        environs = [make() for _ in range(requests)]  # signed ahead: the HMAC is the client's
        statuses.clear()
        tally.start(keep_sql=args.verbose)
        postgres_before = common.cpu_seconds(process_group=-1, database=args.database)[1]
        started = time.process_time()
        send(environs)
        cpu = time.process_time() - started
        postgres = common.cpu_seconds(process_group=-1, database=args.database)[1] - postgres_before
        tally.stop()
        print(f"{name:13s} {cpu / requests * 1000:6.2f} ms CPU/request (PostgreSQL {postgres / requests * 1000:4.2f})  "
              f"{tally.statements / requests:5.2f} SQL statements  {tally.redis_commands / requests:5.2f} Redis "
              f"commands in {tally.redis_round_trips / requests:5.2f} round trips  "
              f"statuses {dict(sorted(statuses.items()))}")
        if args.verbose:
            for sql in tally.sql[:len(tally.sql) // requests or 1]:
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
                        default=["service", "order", "sold_out", "balance", "cold_sold_out", "cold_order", "cold_race"],
                        help="what to measure, comma-separated (default: all of "
                             "service,order,sold_out,balance,cold_sold_out,cold_order,cold_race)")
    parser.add_argument("--rounds", type=int, default=1, help="measure the paths this many times, interleaved")
    parser.add_argument("--profile", type=int, default=0)
    parser.add_argument("--buyers", type=int, default=1000,
                        help="requests of each cold path, each from its own reseller (default 1000)")
    parser.add_argument("--rate-per-minute", type=int, default=0,
                        help="KAMENG_OPENAPI_RATE_PER_MINUTE of the run (default 0: the rate limit off)")
    parser.add_argument("--no-aftercare", dest="aftercare", action="store_false",
                        help="KAMENG_ORDER_AFTERCARE empty: the delivered orders' listeners (run in place here, as "
                             "tasks are eager) are not run, as on a server whose Celery worker runs them")
    parser.add_argument("--profile-path", choices=["order", "sold_out", "balance", "cold_sold_out", "cold_order"],
                        default="order",
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
                                   KAMENG_OPENAPI_RATE_PER_MINUTE=str(args.rate_per_minute))
    if not args.aftercare:
        env["KAMENG_ORDER_AFTERCARE"] = ""
    common.database_create(args.pg_url, args.database)
    try:
        common.migrate(env)
        return subprocess.run([common.PYTHON, __file__, *sys.argv[1:], "--child"], env=env, check=False).returncode
    finally:
        common.database_drop(args.pg_url, args.database)


if __name__ == "__main__":
    sys.exit(main())
