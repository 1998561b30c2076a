"""Login and SMS-code load from many addresses: do the limits hold exactly, and does the site keep answering?

One run, all on 127.0.0.1 and bounded in time:
  1. a fresh PostgreSQL database (`kameng_loginbench`), migrated, with a few accounts whose passwords are known;
  2. a real server as in bench/checkout.py (granian, DEBUG off, Redis cache — db 7 by default — and sessions), with
     KAMENG_SMS_RESEND_SECONDS=0 so that the hourly per-number limit, not the one-minute cooldown, is what a
     number runs into (the cooldown has its unit tests);
  3. attacks, each from its own loopback source addresses (127.1.x.y, bound per client: Linux routes all of
     127/8 to lo). They are not trusted proxies (KAMENG_TRUSTED_PROXIES is 127.0.0.1 and ::1), so each is the
     client address itself; every attack request also carries a random X-Forwarded-For, which must be ignored:
       sms-phone    one number, 60 requests from 60 addresses and 60 devices       -> KAMENG_SMS_PER_PHONE_PER_HOUR
       sms-address  one address, 60 numbers, 60 devices                              -> KAMENG_SMS_PER_ADDRESS_PER_HOUR
       sms-device   one X-Device-Id, 60 numbers from 60 addresses                    -> KAMENG_SMS_PER_DEVICE_PER_HOUR
       sms-spread   300 addresses x 3 numbers, each its own device (all within limits) -> every code sent
       login-pair   one account, 30 wrong passwords from one address                -> KAMENG_LOGIN_MAX_FAILURES, then
                    the right password refused there and accepted from another address
       login-spread one account, 60 wrong passwords from 60 addresses               -> the account backoff after
                    KAMENG_LOGIN_ACCOUNT_BACKOFF_AFTER
       login-addr   one address, limit + 30 wrong passwords, unknown logins  -> KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS
                    (60 in this run unless --address-limit: each failure costs a password hash)
     all at once (each scenario's requests concurrently), while a prober asks for the home page every 50 ms;
  4. codes sent are counted from the database (one PhoneCode row per code sent), refusals from the answers; the
     prober's p50/p99 and every 5xx (a 503 only by design, with Retry-After) are printed.

    .venv/bin/python bench/login_load.py [--port 8741] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
import checkout  # noqa: E402 - bench/checkout.py: the server and database helpers
import common  # noqa: E402 - bench/common.py

PASSWORD = "Bench-login-2026"
LOCK_TEXT = ("登录失败次数过多", "该账号近期在多处登录失败")


def phone(series: int, index: int) -> str:
    return f"1{39 - series:02d}{index:08d}"


@dataclass
class Scenario:
    name: str
    statuses: Counter[int] = field(default_factory=Counter)
    locked: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # the refusals' messages (JSON answers)
    phones: list[str] = field(default_factory=list)


@dataclass
class Attack:
    base: str
    concurrency: asyncio.Semaphore
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    server_errors: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # no answer at all (timeouts, refused connections)

    def client(self, address: str) -> httpx.AsyncClient:
        if address not in self.clients:
            transport = httpx.AsyncHTTPTransport(local_address=address, retries=0)
            self.clients[address] = httpx.AsyncClient(base_url=self.base, transport=transport, timeout=120)
        return self.clients[address]

    async def sms(self, scenario: Scenario, *, address: str, number: str, device: str) -> None:
        async with self.concurrency:
            try:
                response = await self.client(address).post(
                    "/api/v1/account/phone/code", json={"phone": number},
                    headers={"X-Device-Id": device, "X-Forwarded-For": spoofed()})
            except httpx.HTTPError as error:
                scenario.statuses[-1] += 1
                self.failures[type(error).__name__] += 1
                return
        self.record(scenario, response)

    async def login(self, scenario: Scenario, *, address: str, username: str, password: str) -> int:
        token = secrets.token_hex(16)  # an unmasked CSRF secret of 32 characters: cookie and field agree
        async with self.concurrency:
            try:
                response = await self.client(address).post(
                    "/login/", data={"username": username, "password": password, "csrfmiddlewaretoken": token},
                    headers={"Cookie": f"csrftoken={token}", "X-Forwarded-For": spoofed()})
            except httpx.HTTPError as error:
                scenario.statuses[-1] += 1
                self.failures[type(error).__name__] += 1
                return -1
        self.record(scenario, response)
        if any(text in response.text for text in LOCK_TEXT):
            scenario.locked += 1
        return response.status_code

    def record(self, scenario: Scenario, response: httpx.Response) -> None:
        scenario.statuses[response.status_code] += 1
        if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
            scenario.reasons[str(response.json().get("message", ""))[:40]] += 1
        if response.status_code >= 500:
            self.server_errors[response.status_code] += 1

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()


def spoofed() -> str:
    return f"{secrets.randbelow(223) + 1}.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(256)}"


def address(block: int, index: int) -> str:
    return f"127.{block}.{index // 250}.{index % 250 + 1}"


async def probe(base: str, stop: asyncio.Event, latencies: list[float], statuses: Counter[int]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = await client.get("/")
                statuses[response.status_code] += 1
            except httpx.HTTPError as error:
                statuses[-1] += 1
                print(f"  probe error: {type(error).__name__}")
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)


async def attack(base: str, concurrency: int, address_limit: int) -> dict[str, Any]:
    attacker = Attack(base, asyncio.Semaphore(concurrency))
    scenarios = {name: Scenario(name) for name in ("sms-phone", "sms-address", "sms-device", "sms-spread",
                                                    "login-pair", "login-spread", "login-addr")}
    jobs = []
    target = phone(0, 1)
    scenarios["sms-phone"].phones = [target]
    jobs += [attacker.sms(scenarios["sms-phone"], address=address(1, i), number=target, device=f"bench-phone-{i:06d}")
             for i in range(60)]
    scenarios["sms-address"].phones = [phone(1, i) for i in range(60)]
    jobs += [attacker.sms(scenarios["sms-address"], address=address(2, 0), number=number,
                          device=f"bench-address-{i:06d}")
             for i, number in enumerate(scenarios["sms-address"].phones)]
    scenarios["sms-device"].phones = [phone(2, i) for i in range(60)]
    jobs += [attacker.sms(scenarios["sms-device"], address=address(3, i), number=number,
                          device="bench-one-device-000001")
             for i, number in enumerate(scenarios["sms-device"].phones)]
    scenarios["sms-spread"].phones = [phone(3, i) for i in range(900)]
    jobs += [attacker.sms(scenarios["sms-spread"], address=address(4, i // 3), number=number,
                          device=f"bench-spread-{i:06d}")
             for i, number in enumerate(scenarios["sms-spread"].phones)]
    jobs += [attacker.login(scenarios["login-pair"], address=address(5, 0), username="pair", password="wrong")
             for _ in range(30)]
    jobs += [attacker.login(scenarios["login-spread"], address=address(6, i), username="spread", password="wrong")
             for i in range(60)]
    jobs += [attacker.login(scenarios["login-addr"], address=address(7, 0), username=f"nobody{i}", password="wrong")
             for i in range(address_limit + 30)]
    stop = asyncio.Event()
    latencies: list[float] = []
    probe_statuses: Counter[int] = Counter()
    prober = asyncio.create_task(probe(base, stop, latencies, probe_statuses))
    await asyncio.sleep(1)
    idle = len(latencies)
    started = time.perf_counter()
    order = list(jobs)
    secrets.SystemRandom().shuffle(order)  # the scenarios interleaved, as a real flood would be
    await asyncio.gather(*order)
    elapsed = time.perf_counter() - started
    stop.set()
    await prober
    # After the flood: the owner of "pair" from the address that guessed, then from another one.
    after = Scenario("after")
    there = await attacker.login(after, address=address(5, 0), username="pair", password=PASSWORD)
    elsewhere = await attacker.login(after, address=address(8, 0), username="pair", password=PASSWORD)
    spread_owner = await attacker.login(after, address=address(8, 1), username="spread", password=PASSWORD)
    await attacker.close()
    return {"scenarios": scenarios, "requests": len(jobs), "elapsed": elapsed, "latencies": latencies[idle:],
            "idle_latencies": latencies[:idle], "probe_statuses": probe_statuses,
            "server_errors": attacker.server_errors, "pair_there": there,
            "pair_elsewhere": elsewhere, "spread_owner": spread_owner, "failures": attacker.failures}


def seed_accounts() -> None:
    from kameng.accounts.models import User

    for username in ("pair", "spread"):
        user = User(username=username)
        user.set_password(PASSWORD)
        user.save()


def codes_sent(phones: list[str]) -> int:
    from kameng.accounts.models import PhoneCode  # noqa: F401 - the models are loaded
    from kameng.accounts.phone_login import _phone_key
    from kameng.accounts.phone_models import PhoneCode as Code

    return Code.objects.filter(phone_key__in=[_phone_key(number) for number in phones]).count()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def report(result: dict[str, Any]) -> bool:
    from django.conf import settings

    scenarios: dict[str, Scenario] = result["scenarios"]
    ok = True

    def check(label: str, got: int, expected: int, *, at_most: bool = False) -> None:
        nonlocal ok
        good = got <= expected if at_most else got == expected
        ok = ok and good
        print(f"  {'ok ' if good else 'BAD'} {label}: {got} ({'at most ' if at_most else ''}expected {expected})")

    print(f"{result['requests']} attack requests in {result['elapsed']:.1f} s "
          f"({result['requests'] / result['elapsed']:.0f}/s)")
    for scenario in scenarios.values():
        print(f"  {scenario.name}: answers {dict(sorted(scenario.statuses.items()))}"
              + (f", locked answers {scenario.locked}" if scenario.name.startswith("login") else "")
              + (f", refusals {dict(scenario.reasons)}" if scenario.reasons else ""))
    print("limits:")
    check("codes sent to the one number (per phone per hour)", codes_sent(scenarios["sms-phone"].phones),
          min(settings.KAMENG_SMS_PER_PHONE_PER_HOUR, settings.KAMENG_SMS_PER_PHONE_PER_DAY))
    check("codes sent from the one address (per address per hour, X-Forwarded-For ignored)",
          codes_sent(scenarios["sms-address"].phones), settings.KAMENG_SMS_PER_ADDRESS_PER_HOUR)
    check("codes sent for the one device (per device per hour)", codes_sent(scenarios["sms-device"].phones),
          settings.KAMENG_SMS_PER_DEVICE_PER_HOUR)
    check("codes sent in the spread flood (all within limits)", codes_sent(scenarios["sms-spread"].phones),
          len(scenarios["sms-spread"].phones))
    pair = scenarios["login-pair"]
    check("wrong passwords evaluated for one account from one address", pair.statuses[400],
          settings.KAMENG_LOGIN_MAX_FAILURES)
    check("the right password from the guessing address (429 = refused)", result["pair_there"], 429)
    check("the right password from another address (302 = logged in)", result["pair_elsewhere"], 302)
    spread = scenarios["login-spread"]
    # Past the threshold each failure makes the account wait 1, 2, 4 … s before its next one try: over an attack
    # of T seconds that is at most 1 + floor(log2(T + 1)) tries after the threshold's.
    turns = 1 + math.floor(math.log2(result["elapsed"] + 1))
    check(f"wrong passwords evaluated for one account from 60 addresses (account backoff: "
          f"{settings.KAMENG_LOGIN_ACCOUNT_BACKOFF_AFTER - 1} free, then one try per doubling wait, {turns} in "
          f"{result['elapsed']:.0f} s)", spread.statuses[400],
          settings.KAMENG_LOGIN_ACCOUNT_BACKOFF_AFTER - 1 + turns, at_most=True)
    print(f"  (the owner of that account from a new address right after: {result['spread_owner']}; 429 means one "
          f"backoff wait, at most {settings.KAMENG_LOGIN_ACCOUNT_BACKOFF_MAX_SECONDS} s)")
    check(f"wrong passwords evaluated from one address over {scenarios['login-addr'].statuses.total()} logins "
          "(per address)",
          scenarios["login-addr"].statuses[400], settings.KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS)
    print("site:")
    latencies = result["latencies"]
    print(f"  home page during the attack: {len(latencies)} probes, p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies, default=0) * 1000:.0f} ms; "
          f"idle before: p50 {percentile(result['idle_latencies'], 0.5) * 1000:.0f} ms; "
          f"answers {dict(result['probe_statuses'])}")
    errors = {status: count for status, count in result["server_errors"].items() if status != 503}
    check("5xx answers to the attack other than 503", sum(errors.values()), 0)
    check("attack requests that got no answer at all", sum(result["failures"].values()), 0)
    check("home page answers that were not 200", sum(count for status, count in result["probe_statuses"].items()
                                                     if status != 200), 0)
    return ok


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8741)
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight at once")
    parser.add_argument("--granian-workers", type=int, default=2)
    parser.add_argument("--granian-threads", type=int, default=24)
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--database", default="kameng_loginbench")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_LOGIN_REDIS_URL", "redis://127.0.0.1:6379/7"))
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--address-limit", type=int, default=60,
                        help="KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS for the run (default 60, production 300): each "
                             "failure costs a password hash, and 300 of them take minutes on a small machine")
    args = parser.parse_args()
    args.worker = False  # no Celery worker: nothing here queues a task
    return args


def main() -> int:
    args = parse_arguments()
    env = checkout.bench_environment(args)
    env.update({"KAMENG_SMS_RESEND_SECONDS": "0", "KAMENG_SMS_BACKEND": "console",
                "KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS": str(args.address_limit),
                "CACHE_KEY_PREFIX": f"kameng-loginbench-{os.getpid()}"})
    os.environ.update(env)
    common.database_create(args.pg_url, args.database)
    server = None
    try:
        checkout.migrate(env)
        import django

        django.setup()
        seed_accounts()
        log = Path(env["KAMENG_VAR_DIR"]) / "login-load-server.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        server = checkout.server_start("granian", args, env, log, {})
        cpu_before = common.cpu_seconds(process_group=server.pid, database=args.database)
        result = asyncio.run(attack(f"http://127.0.0.1:{args.port}", args.concurrency, args.address_limit))
        cpu_after = common.cpu_seconds(process_group=server.pid, database=args.database)
        ok = report(result)
        server_cpu = cpu_after[0] - cpu_before[0]
        print(f"  CPU: server {server_cpu:.1f} s, PostgreSQL {cpu_after[1] - cpu_before[1]:.1f} s for "
              f"{result['requests'] + 3} requests ({server_cpu / (result['requests'] + 3) * 1000:.1f} ms server CPU "
              f"per request)")
        print("all limits held" if ok else "SOME LIMIT DID NOT HOLD")
        return 0 if ok else 1
    finally:
        if server is not None:
            common.process_stop(server)
        checkout.redis_forget(env)
        from django.db import connections

        connections.close_all()
        if not args.keep_database:
            common.database_drop(args.pg_url, args.database)


if __name__ == "__main__":
    sys.exit(main())
