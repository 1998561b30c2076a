"""Reads of stock: counts per SKU and an order's delivered secrets."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.cache import cache
from django.db.models import Count, Q
from django.utils import timezone

from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.inventory.services import card_key_sources_sellable, decrypt_secrets

STOCK_CACHE_SECONDS = 3


def stock_by_sku(sku_ids: Iterable[int]) -> dict[int, int]:
    """Available, unexpired keys per SKU (0 for a SKU with none). Cached for a few seconds: storefront display
    only. Staff pages, which must show an import or a void at once, read `stock_by_sku_now`."""
    ids = sorted(set(sku_ids))
    if not ids:
        return {}
    cache_key = "stock:" + ",".join(map(str, ids))
    cached = cache.get(cache_key)
    if cached is not None:
        return dict(cached)
    result = stock_by_sku_now(ids)
    cache.set(cache_key, result, STOCK_CACHE_SECONDS)
    return result


def stock_by_sku_now(sku_ids: Iterable[int]) -> dict[int, int]:
    """Available, unexpired keys per SKU (0 for a SKU with none), counted now: one grouped query, no cache. Keys of
    a supplier whose keys cannot be sold now (suspended, offer inactive or excluded) are not counted."""
    ids = sorted(set(sku_ids))
    if not ids:
        return {}
    now = timezone.now()
    rows = (
        CardKey.objects.filter(sku_id__in=ids, status=CardKeyStatus.AVAILABLE)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .values("sku_id", "supplier_id").annotate(n=Count("id")).values_list("sku_id", "supplier_id", "n")
    )
    counts = dict.fromkeys(ids, 0)
    sellable: dict[int, set[int] | None] = {}
    for sku_id, supplier_id, count in rows:
        if supplier_id is not None:  # a supplier's keys count only while a claim may take them (card-key bidding)
            if sku_id not in sellable:
                sellable[sku_id] = card_key_sources_sellable(sku_id=sku_id)
            eligible = sellable[sku_id]
            if eligible is not None and supplier_id not in eligible:
                continue
        counts[sku_id] += count
    return counts


def secrets_for_order(*, order_id: int) -> list[str]:
    """The plaintext secrets delivered to an order (sold keys only), in claim order."""
    rows = CardKey.objects.filter(order_id=order_id, status=CardKeyStatus.SOLD).order_by("id").values_list(
        "secret_ciphertext", flat=True)
    return decrypt_secrets([bytes(row) for row in rows])
