"""The rules as each process sees them: a snapshot of the enabled rules by checkpoint, the blacklist's CIDR ranges
and the minors' limits, so that a checkpoint with no rule costs no query.

Every save of a rule, a CIDR entry or the minors' limits writes a new rules version into the cache. A process looks
at that version at most every KAMENG_RISK_RULES_CHECK_SECONDS (one cache read, no query) and reloads the snapshot
(three queries) when it changed (kameng.core.cache.VersionedProcessCache) — so a change applies everywhere within
seconds, without a restart. With Redis (production) the version is shared by every process. The embedded
default's local-memory cache is per process: there the snapshot is also reloaded at the latest every
KAMENG_RISK_RULES_MAX_AGE_SECONDS, whatever the version says.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from kameng.core.cache import VersionedProcessCache
from kameng.risk.models import BlacklistEntry, BlacklistKind, MinorsPolicy, RiskRule

logger = logging.getLogger("kameng.risk")

VERSION_KEY = "risk:rules:version"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class RuleSpec:
    id: int
    name: str
    checkpoint: str
    kind: str
    dimension: str
    window_seconds: int
    limit: int
    amount_threshold: Decimal | None
    action: str
    priority: int
    message: str


@dataclass(frozen=True)
class MinorsLimits:
    minimum_age: int = 8
    child_age: int = 16
    adult_age: int = 18
    child_per_payment: Decimal = Decimal("50.00")
    child_per_month: Decimal = Decimal("200.00")
    teen_per_payment: Decimal = Decimal("100.00")
    teen_per_month: Decimal = Decimal("400.00")
    require_verification: bool = True


@dataclass(frozen=True)
class CidrEntry:
    network: Network
    entry_id: int
    reason: str
    expires_at: float | None  # a timestamp


@dataclass(frozen=True)
class Snapshot:
    version: str
    loaded_at: float  # time.monotonic()
    rules: dict[str, tuple[RuleSpec, ...]]
    cidrs: tuple[CidrEntry, ...]
    minors: MinorsLimits


def rules_version_bump() -> None:
    """A rule changed: a new version for every process, and this one reloads at its next check."""
    _snapshots.changed()


def rules_snapshot_forget() -> None:
    """Drop this process's snapshot (tests)."""
    _snapshots.forget()


def _load(version: str) -> Snapshot:
    by_checkpoint: dict[str, list[RuleSpec]] = {}
    for rule in RiskRule.objects.filter(is_enabled=True).order_by("priority", "id"):
        by_checkpoint.setdefault(rule.checkpoint, []).append(RuleSpec(
            id=rule.pk, name=rule.name, checkpoint=rule.checkpoint, kind=rule.kind, dimension=rule.dimension,
            window_seconds=rule.window_seconds, limit=rule.limit, amount_threshold=rule.amount_threshold,
            action=rule.action, priority=rule.priority, message=rule.message))
    cidrs = []
    now = timezone.now()
    for entry in BlacklistEntry.objects.filter(kind=BlacklistKind.CIDR).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)):
        try:
            network = ipaddress.ip_network(entry.value, strict=False)
        except ValueError:
            logger.warning("blacklist entry %s is not a network: %r", entry.pk, entry.value)
            continue
        cidrs.append(CidrEntry(network=network, entry_id=entry.pk, reason=entry.reason,
                               expires_at=entry.expires_at.timestamp() if entry.expires_at else None))
    policy = MinorsPolicy.objects.filter(pk=1).first()
    minors = MinorsLimits() if policy is None else MinorsLimits(
        minimum_age=policy.minimum_age, child_age=policy.child_age, adult_age=policy.adult_age,
        child_per_payment=policy.child_per_payment, child_per_month=policy.child_per_month,
        teen_per_payment=policy.teen_per_payment, teen_per_month=policy.teen_per_month,
        require_verification=policy.require_verification)
    return Snapshot(version=version, loaded_at=time.monotonic(),
                    rules={checkpoint: tuple(rules) for checkpoint, rules in by_checkpoint.items()},
                    cidrs=tuple(cidrs), minors=minors)


# One snapshot per process, its version checked every KAMENG_RISK_RULES_CHECK_SECONDS; a cache that cannot be read
# keeps the loaded rules (a warning), one that cannot be written leaves the other processes to the max age.
_snapshots = VersionedProcessCache[Snapshot, object, object](
    key=VERSION_KEY, load=_load, check_seconds=lambda: settings.KAMENG_RISK_RULES_CHECK_SECONDS,
    max_age_seconds=lambda: settings.KAMENG_RISK_RULES_MAX_AGE_SECONDS, keeps_value_on_cache_error=True)


def rules_snapshot() -> Snapshot:
    """This process's snapshot, reloaded when the rules' version moved on (see the module docstring). Raises what
    the cache or the database raise when it must reload and cannot (the engine applies its failure policy)."""
    return _snapshots.value()
