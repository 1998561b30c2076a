"""Velocity counters under real concurrency: many threads at one checkpoint on PostgreSQL with the Redis cache,
and exactly `limit` attempts pass."""

from __future__ import annotations

import pytest
from django.core.cache import caches

from kameng.risk.engine import RiskBlockedError, RiskContext, risk_check
from kameng.risk.models import Checkpoint, Dimension, RiskDecision
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.risk.support import rule

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 24
LIMIT = 7


def _requires_redis() -> None:
    if not hasattr(caches["default"], "_cache") or not hasattr(caches["default"]._cache, "get_client"):
        pytest.skip("the counters' race needs the Redis cache (TEST_REDIS_URL)")


@pytest.mark.parametrize("checkpoint", [Checkpoint.LOGIN, Checkpoint.ORDER])
def test_exactly_limit_attempts_pass_when_many_threads_race(checkpoint: str) -> None:
    requires_postgresql()
    _requires_redis()
    rule(checkpoint=checkpoint, dimension=Dimension.IP, limit=LIMIT)

    outcomes = run_in_threads(THREADS, lambda index: risk_check(
        checkpoint=checkpoint, context=RiskContext(ip="2001:db8:7::1", device_id=f"h:device-{index:04d}")))

    assert unexpected(outcomes, RiskBlockedError) == []
    passed = [outcome for outcome in outcomes if outcome.error is None]
    assert len(passed) == LIMIT
    assert RiskDecision.objects.filter(decision="block").count() == THREADS - LIMIT
