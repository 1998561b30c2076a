"""`manage.py healthcheck`: is the database, the cache and the task broker reachable? Exit status 0 means yes.

Meant for systemd `ExecStartPre=`, container health checks and deployment scripts; it prints one line per check.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        raise RuntimeError(f"{len(pending)} migration(s) not applied: run `manage.py migrate`")
    return f"{connection.vendor} ({connection.settings_dict.get('NAME')}), migrations applied"


def check_cache() -> str:
    key = f"kameng-healthcheck-{uuid.uuid4().hex}"
    cache.set(key, "ok", timeout=10)
    try:
        if cache.get(key) != "ok":
            raise RuntimeError("a value written to the cache could not be read back")
    finally:
        cache.delete(key)
    return settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]


def check_broker(timeout: float) -> str:
    from kameng.celery import app

    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, timeout=timeout)
        return broker.as_uri()  # the password, if any, is masked by kombu


class Command(BaseCommand):
    help = "Check that the database, the cache and the Celery broker answer; non-zero exit status if one does not."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the broker")

    def handle(self, *args: Any, **options: Any) -> None:
        checks: list[tuple[str, Callable[[], str]]] = [
            ("database", check_database),
            ("cache", check_cache),
            ("broker", lambda: check_broker(options["timeout"])),
        ]
        failed = []
        for name, check in checks:
            started = time.monotonic()
            try:
                detail = check()
            except Exception as error:  # any failure of a dependency is a failed check
                failed.append(name)
                self.stdout.write(self.style.ERROR(f"{name}: FAIL — {type(error).__name__}: {error}"))
                continue
            elapsed = (time.monotonic() - started) * 1000
            self.stdout.write(self.style.SUCCESS(f"{name}: ok — {detail} ({elapsed:.0f} ms)"))
        if failed:
            raise CommandError(f"unhealthy: {', '.join(failed)}")
