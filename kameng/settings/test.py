"""Settings for the test suite: fresh random keys every run, eager tasks, Redis when present.

With CI=true a missing Redis is a failure (the suite must exercise the real cache); locally it falls back to
the in-process cache. The database comes from DATABASE_URL like everywhere else (the Makefile runs the suite on
SQLite and on PostgreSQL).
"""

from __future__ import annotations

import base64
import os
import socket
from urllib.parse import urlparse

os.environ["KAMENG_TESTING"] = "1"
os.environ["KAMENG_IGNORE_DOTENV"] = "1"
os.environ.setdefault("KAMENG_VAR_DIR", "/tmp/kameng-test-var")  # noqa: S108 - scratch dir for test runs
os.environ.setdefault("KAMENG_ENCRYPTION_KEYS", "test1:" + base64.b64encode(os.urandom(32)).decode())
os.environ.setdefault("KAMENG_BLIND_INDEX_KEY", base64.b64encode(os.urandom(32)).decode())
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("KAMENG_IDENTITY_BACKEND", "local")
os.environ.setdefault("KAMENG_SIMULATORS_ENABLED", "1")
# Off by default: most tests run inside a transaction the writer thread cannot see; its own tests switch it on.
os.environ.setdefault("KAMENG_CHECKOUT_GROUP_COMMIT", "0")
# Off by default (a share of 1 bounds nothing): most tests reserve a small stock whole; the tests of the bounds on
# unpaid reservations (tests/orders/test_reservations.py) set the production shares.
os.environ.setdefault("KAMENG_UNPAID_STOCK_SHARE", "1")
os.environ.setdefault("KAMENG_UNPAID_STOCK_SHARE_PER_BUYER", "1")
# Off: a test's supplier may reuse an id an earlier test's rolled-back supplier had (SQLite); its own test sets it.
os.environ.setdefault("KAMENG_TOPUP_CALLBACK_CONNECTOR_SECONDS", "0")
# Room for the concurrency tests' threads (24 at most) beside the test's own connection and the checkout writer.
os.environ.setdefault("DATABASE_POOL_MAX_SIZE", "40")


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=0.5):
            return True
    except OSError:
        return False


_redis = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
if _reachable(_redis):
    os.environ.setdefault("REDIS_URL", _redis)
elif os.environ.get("CI", "").lower() == "true":
    raise RuntimeError(f"CI=true but Redis is not reachable at {_redis}: start it (see DEVELOPERS.md)")

from kameng.settings.base import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast hashing: tests, not production
CACHES["default"]["KEY_PREFIX"] = f"kameng-test-{os.getpid()}"  # noqa: F405
# Off by default: tasks run eagerly here, so the listeners would run inside every checkout a test measures (in
# production they run in a worker after commit). The points and membership tests switch them on.
KAMENG_ORDER_AFTERCARE = []
