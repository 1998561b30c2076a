"""Open API v1 nonces: a nonce a key used once is refused again (per key) for NONCE_KEEP_SECONDS.

Where they are kept (KAMENG_OPENAPI_NONCE_STORE):
- "cache": an atomic `cache.add` — right when the cache is shared by every web process (Redis, the production
  setting with REDIS_URL); one round trip, nothing written to the database (and the key's rate counter in the
  same round trip: `nonce_remember_counted`);
- "database": a row per nonce (ApiNonce, unique per key), the INSERT's unique constraint being the atomic check —
  right with any number of processes whatever the cache; rows older than the window are purged by a beat task;
- "auto" (the default): "cache" when the cache is Redis, else "database" (the in-process cache of a server without
  REDIS_URL is one per process and would let a replay through another process).

A nonce is kept 15 minutes: the timestamp window is ±300 s, so a request can only be replayed while its timestamp
stays within 300 s of the server's clock — 10 minutes in all; past that the skew check refuses it anyway.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from kameng.core.counters import counter_hit, counter_hit_after_add, counters_on_redis
from kameng.resellers.models import ApiNonce

NONCE_KEEP_SECONDS = 15 * 60
REDIS_BACKENDS = ("RedisCache", "django_redis")


def nonce_store() -> str:
    configured = settings.KAMENG_OPENAPI_NONCE_STORE
    if configured in ("cache", "database"):
        return str(configured)
    backend = str(settings.CACHES["default"]["BACKEND"])
    return "cache" if any(name in backend for name in REDIS_BACKENDS) else "database"


def _cache_key(api_key_pk: int, nonce: str) -> str:
    return f"openapi:nonce:{api_key_pk}:{nonce}"


def nonce_remember(*, api_key_pk: int, nonce: str) -> bool:
    """Remember the nonce for the key; False when the key used it before (a replay)."""
    if nonce_store() == "cache":
        return bool(cache.add(_cache_key(api_key_pk, nonce), 1, timeout=NONCE_KEEP_SECONDS))
    try:
        with transaction.atomic():
            ApiNonce.objects.create(api_key_id=api_key_pk, nonce=nonce, created_at=timezone.now())
    except IntegrityError:
        return False
    return True


def nonce_notes_supported() -> bool:
    """Whether `nonce_remember_counted` takes a `note` (the nonces in the cache, the cache Redis)."""
    return nonce_store() == "cache" and counters_on_redis()


def nonce_remember_counted(*, api_key_pk: int, nonce: str, counter: str, window: int,
                           note: tuple[str, int, int] | None = None) -> int | None:
    """`nonce_remember`, and for a new nonce one more at the rate counter `counter` (kameng.core.counters): its
    count in the window, or None for a replay (nothing counted). With the nonces in the cache both go in one call
    (on Redis one script: one round trip for the two), and with them `note` when it is counted (only where
    `nonce_notes_supported`)."""
    if nonce_store() == "cache":
        return counter_hit_after_add(marker=_cache_key(api_key_pk, nonce), marker_seconds=NONCE_KEEP_SECONDS,
                                     key=counter, window=window, note=note)
    if note is not None:
        raise ValueError("a note needs the nonces in the Redis cache (nonce_notes_supported)")
    if not nonce_remember(api_key_pk=api_key_pk, nonce=nonce):
        return None
    return counter_hit(key=counter, window=window)


def nonces_purge(*, batch_size: int = 5000) -> int:
    """Delete the nonce rows past the window (the beat task); returns how many went."""
    cutoff = timezone.now() - timedelta(seconds=NONCE_KEEP_SECONDS)
    deleted = 0
    while True:
        ids = list(ApiNonce.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += ApiNonce.objects.filter(pk__in=ids).delete()[0]
