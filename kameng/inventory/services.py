"""Writes on card-key stock: claiming keys for orders, releasing them, selling reserved ones.

Claiming never uses the naive `ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED` from the head of the queue: on a hot
product every buyer would fight over the same first rows. The scan starts at a random id inside the SKU's range
of available keys and wraps to the start when it finds too few, so concurrent buyers mostly land on different rows.
The `status = 'available'` guard in the UPDATE stays the source of truth on every backend.

Card-key bidding (竞价): several suppliers may stock the same SKU (`CardKey.supplier`, `CardKey.cost` = its offer
price). A claim takes keys source by source, in the SKU's *plan*: first the platform's own stock (supplier NULL:
already paid for, so selling it first never pays a supplier for a sale the platform could serve itself), then each
eligible supplier, cheapest offer first, a higher star rating breaking ties (a staff pin goes before all suppliers).
Which suppliers are eligible (approved, offer active, not excluded) and their order come from
`settings.KAMENG_CARD_KEY_SOURCES` (a dotted path, `kameng.suppliers.card_key_bidding.card_key_sources`: this app
may not import the suppliers app), asked when the plan is built; each answer also says whether an order paying a
given unit price may take its keys (`SupplierSource.is_sellable_at`: the suppliers' one loss guard, against what the
order pays per unit, a VIP's member price included), and a claim passes the order's `unit_price` to skip a supplier
that would sell at a loss for this order; the plan (sources and their id ranges) is cached
per process for `BOUNDS_TTL_SECONDS`, so a suspension, a price change or a source restocked after it ran out reaches
the claim within that time (a source that comes up short makes the next claim rebuild the plan at once).
Suppliers' keys that are not eligible are never taken: each source's claim says `supplier_id = …` (or `IS NULL`).
A SKU that no supplier offers keeps the single-source claim exactly as before, with no supplier predicate. An order
may take keys from two sources when the first runs out; every key keeps its own supplier and cost.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.db import connection
from django.db.models import Max, Min, Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from kameng.core.crypto import keyring
from kameng.core.errors import ConflictError
from kameng.core.sql import json_rows
from kameng.inventory.models import SECRET_CONTEXT, CardKey, CardKeyStatus

BOUNDS_TTL_SECONDS = 5.0
# How long a process answers "sold out" for a SKU whose claim found no key at all, without trying again.
SOLD_OUT_MEMORY_SECONDS = 1.0


class SupplierSource(Protocol):
    """One supplier whose keys of a SKU may be sold, as `KAMENG_CARD_KEY_SOURCES` answers them (best first)."""

    @property
    def supplier_id(self) -> int: ...

    def is_sellable_at(self, unit_price: Decimal | None) -> bool:
        """Whether an order paying `unit_price` per unit may take these keys (None: at the SKU's retail price)."""
        ...


@dataclass(frozen=True)
class _Source:
    """One source of a SKU's keys in a plan, with the id range of its available keys when the plan was built."""

    supplier_id: int | None  # None: the platform's own stock
    filtered: bool  # False only for a SKU that no supplier offers: every key is the platform's, no predicate
    low: int
    high: int
    guard: SupplierSource | None = None  # a supplier's: whether an order's unit price may take its keys

    def is_sellable_at(self, unit_price: Decimal | None) -> bool:
        return self.guard is None or self.guard.is_sellable_at(unit_price)

    @property
    def sql(self) -> str:
        if not self.filtered:
            return ""
        return " AND supplier_id IS NULL" if self.supplier_id is None else " AND supplier_id = %(supplier_id)s"

    @property
    def q(self) -> Q:
        if not self.filtered:
            return Q()
        return Q(supplier__isnull=True) if self.supplier_id is None else Q(supplier_id=self.supplier_id)


@dataclass(frozen=True)
class _Plan:
    sources: tuple[_Source, ...]
    built_at: float


# Per SKU: the sources a claim takes keys from, in order (cleared by the tests between cases).
_bounds: dict[int, _Plan] = {}


class SoldOutError(ConflictError):
    # Set by a claim that found nothing sellable at any price: the checkout may remember the SKU as sold out
    # (`card_keys_sold_out_note`) once it knows no upstream sells it instead.
    nothing_sellable: bool = False


class ClaimShortError(Exception):
    """`card_keys_claim_many` could not cover every order; `claimed` keys were taken by then (the caller's
    transaction must roll back)."""

    def __init__(self, claimed: int) -> None:
        super().__init__(f"stock short ({claimed} keys claimed)")
        self.claimed = claimed


def _sold_out(available: int) -> SoldOutError:
    if available == 0:
        return SoldOutError("已售罄", code="sold_out", extra={"available": 0})
    return SoldOutError("库存不足，仅剩 %(available)s 件", code="sold_out", extra={"available": available},
                        params={"available": available})


def _available(sku_id: int) -> QuerySet[CardKey]:
    now = timezone.now()
    return CardKey.objects.filter(sku_id=sku_id, status=CardKeyStatus.AVAILABLE).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


@cache
def _source_policy(path: str) -> Callable[[int], list[SupplierSource] | None]:
    return import_string(path)


def eligible_suppliers(sku_id: int) -> list[SupplierSource] | None:
    """The suppliers whose keys of the SKU may be sold, best first; None when no supplier offers the SKU."""
    path = settings.KAMENG_CARD_KEY_SOURCES
    return _source_policy(path)(sku_id) if path else None


def _source(sku_id: int, supplier: SupplierSource | None, *, filtered: bool) -> _Source:
    supplier_id = None if supplier is None else supplier.supplier_id
    row = CardKey.objects.filter(sku_id=sku_id, status=CardKeyStatus.AVAILABLE).filter(
        _Source(supplier_id, filtered, 0, 0).q).aggregate(low=Min("id"), high=Max("id"))
    return _Source(supplier_id, filtered, row["low"] or 0, row["high"] or 0, supplier)


def _plan(sku_id: int) -> _Plan:
    cached = _bounds.get(sku_id)
    if cached is not None and time.monotonic() - cached.built_at <= BOUNDS_TTL_SECONDS:
        return cached
    suppliers = eligible_suppliers(sku_id)
    if suppliers is None:
        sources: tuple[_Source, ...] = (_source(sku_id, None, filtered=False),)
    else:
        every = (_source(sku_id, supplier, filtered=True) for supplier in (None, *suppliers))
        sources = tuple(source for source in every if source.high)
    plan = _Plan(sources, time.monotonic())
    _bounds[sku_id] = plan
    return plan


# Per SKU: when a claim in this process last found no key of it to sell (cleared by the tests between cases).
_sold_out_at: dict[int, float] = {}


def card_keys_known_sold_out(*, sku_id: int) -> bool:
    """Whether a claim in this process found the SKU without any sellable key less than SOLD_OUT_MEMORY_SECONDS
    ago: a checkout may then answer "sold out" without claiming (a flash sale's losers cost no transaction).

    The bound on a stale answer: keys imported or given back (an unpaid order released, a failed delivery
    returned) in this process clear the mark at once; done elsewhere, they are sold here within
    SOLD_OUT_MEMORY_SECONDS. Only a claim that found nothing sellable at any price marks a SKU (not one short of a
    larger quantity, nor one that skipped a supplier's keys for the order's unit price)."""
    seen = _sold_out_at.get(sku_id)
    if seen is None:
        return False
    if time.monotonic() - seen <= SOLD_OUT_MEMORY_SECONDS:
        return True
    _sold_out_at.pop(sku_id, None)
    return False


def card_keys_sold_out_forget(*, sku_id: int | None = None) -> None:
    """Forget the sold-out mark of a SKU (keys were imported), or of every SKU (keys went back to stock)."""
    if sku_id is None:
        _sold_out_at.clear()
    else:
        _sold_out_at.pop(sku_id, None)


def card_keys_sold_out_note(*, sku_id: int) -> None:
    """Remember the SKU as sold out (`card_keys_known_sold_out`): the checkout calls it when a claim found nothing
    sellable (`SoldOutError.nothing_sellable`) and no upstream takes the order instead (kameng.orders.upstream)."""
    _sold_out_at[sku_id] = time.monotonic()


def card_keys_nothing_sellable(*, sku_id: int, unit_price: Decimal | None) -> bool:
    """Whether a claim at `unit_price` that took nothing would say "sold out" with nothing sellable at any price
    (`SoldOutError.nothing_sellable`): no available key of the SKU's sources, counted now."""
    return _sold_out_noted(sku_id, unit_price).nothing_sellable


def card_keys_sold_out_error() -> SoldOutError:
    """The answer of a claim that found nothing sellable (as `card_keys_claim` raises it)."""
    error = _sold_out(0)
    error.nothing_sellable = True
    return error


def _sold_out_noted(sku_id: int, unit_price: Decimal | None) -> SoldOutError:
    """The "sold out" answer of a claim that took nothing, flagged when nothing at all is sellable."""
    available = _available_to_sell(sku_id, unit_price)
    error = _sold_out(available)
    error.nothing_sellable = available == 0 and all(source.is_sellable_at(unit_price)
                                                    for source in _plan(sku_id).sources)
    return error


def card_key_plan_forget(*, sku_id: int) -> None:
    """Rebuild the SKU's plan at its next claim in this process (a supplier's offer or status just changed)."""
    _bounds.pop(sku_id, None)


def card_key_sources_sellable(*, sku_id: int) -> set[int] | None:
    """The suppliers whose available keys of the SKU a claim at the retail price may take now; None: every key (no
    supplier offers it)."""
    sources = _plan(sku_id).sources
    if any(not source.filtered for source in sources):
        return None
    return {source.supplier_id for source in sources
            if source.supplier_id is not None and source.is_sellable_at(None)}


def _random_start(sku_id: int) -> int:
    """Where the scan of a SKU that no supplier offers starts (its single source)."""
    source = _plan(sku_id).sources[0]
    return _start(source)


def _start(source: _Source) -> int:
    low, high = source.low, source.high
    return random.randint(low, high) if high > low else low  # noqa: S311 - spreading load, not security


def _starts(sku_id: int, unit_price: Decimal | None) -> list[tuple[_Source, int]]:
    sources = _plan(sku_id).sources
    if len(sources) == 1 and not sources[0].filtered:
        return [(sources[0], _random_start(sku_id))]
    return [(source, _start(source)) for source in sources if source.is_sellable_at(unit_price)]


def _available_to_sell(sku_id: int, unit_price: Decimal | None) -> int:
    """Available keys of the SKU's eligible sources at this unit price, counted now (for the "sold out" answer)."""
    sources = [source for source in _plan(sku_id).sources if source.is_sellable_at(unit_price)]
    if any(not source.filtered for source in sources):
        return _available(sku_id).count()
    if not sources:
        return 0
    eligible = Q(supplier_id__in=[source.supplier_id for source in sources if source.supplier_id is not None])
    if any(source.supplier_id is None for source in sources):
        eligible |= Q(supplier__isnull=True)
    return _available(sku_id).filter(eligible).count()


def card_keys_claim(*, sku_id: int, order_id: int, quantity: int, sell: bool,
                    unit_price: Decimal | None = None) -> list[tuple[int, bytes]]:
    """Claim `quantity` available keys of the SKU for the order, in the caller's transaction.

    `sell=True` marks them sold (paid checkout), otherwise reserved (unpaid order). Keys come from the SKU's
    sources in plan order (the module's docstring), skipping suppliers that would sell at a loss at `unit_price`
    (the order's; None: the retail price). Returns (id, ciphertext) pairs in id order. Raises
    `SoldOutError` (nothing claimed) when stock is short.
    """
    status = CardKeyStatus.SOLD if sell else CardKeyStatus.RESERVED
    claimed: list[tuple[int, bytes]] = []
    for source, start in _starts(sku_id, unit_price):
        need = quantity - len(claimed)
        if connection.vendor == "postgresql":
            taken = _claim_postgresql(sku_id, order_id, need, status, source=source, start=start)
        else:
            taken = _claim_portable(sku_id, order_id, need, status, source=source, start=start)
        claimed.extend(taken)
        if len(claimed) >= quantity:
            break
        _bounds.pop(sku_id, None)  # a source ran short: rebuild the plan at the next claim
    if len(claimed) < quantity:
        if claimed:
            # Give a partial claim back here rather than rely on the caller rolling back: "sold out" claims nothing.
            CardKey.objects.filter(id__in=[pk for pk, _ in claimed], order_id=order_id).update(
                status=CardKeyStatus.AVAILABLE, order_id=None, sold_at=None)
        raise _sold_out(len(claimed)) if claimed else _sold_out_noted(sku_id, unit_price)
    # In id order, as the order page and a replayed request list them (the scan may have wrapped around).
    return sorted(claimed)


_PG_CLAIM = """
UPDATE inventory_cardkey SET status = %(status)s, order_id = %(order_id)s, sold_at = %(now)s
WHERE status = 'available' AND id IN (
    SELECT id FROM inventory_cardkey
    WHERE sku_id = %(sku_id)s AND status = 'available' AND {range}
      AND (expires_at IS NULL OR expires_at > %(now)s)
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id, secret_ciphertext
"""


def _claim_postgresql(sku_id: int, order_id: int, quantity: int, status: str, *, source: _Source,
                      start: int) -> list[tuple[int, bytes]]:
    # One round trip: lock candidates past a random start, skipping rows other buyers hold, and take them.
    params: dict[str, Any] = {"status": status, "order_id": order_id, "now": timezone.now(), "sku_id": sku_id,
                              "start": start, "supplier_id": source.supplier_id}
    claimed: list[tuple[int, bytes]] = []
    with connection.cursor() as cursor:
        for bound in ("id >= %(start)s", "id < %(start)s"):
            params["limit"] = quantity - len(claimed)
            cursor.execute(_PG_CLAIM.format(range=bound + source.sql), params)
            claimed.extend((row[0], bytes(row[1])) for row in cursor.fetchall())
            if len(claimed) >= quantity:
                break
    return claimed


_PG_CLAIM_MANY = """
WITH wanted AS (
    SELECT want.order_id, row_number() OVER (ORDER BY want.position, copy.n) AS slot
    FROM json_to_recordset(%(wants)s::json) AS want(position integer, order_id bigint, quantity integer)
    CROSS JOIN LATERAL generate_series(1, want.quantity) AS copy(n)
), picked AS (
    SELECT candidate.id, row_number() OVER (ORDER BY candidate.id) AS slot FROM (
        SELECT id FROM inventory_cardkey
        WHERE sku_id = %(sku_id)s AND status = 'available' AND {range}
          AND (expires_at IS NULL OR expires_at > %(now)s)
        ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) AS candidate
)
UPDATE inventory_cardkey AS card SET status = %(status)s, order_id = wanted.order_id, sold_at = %(now)s
FROM picked JOIN wanted USING (slot)
WHERE card.id = picked.id AND card.status = 'available'
RETURNING card.id, card.order_id, card.secret_ciphertext
"""


def card_keys_claim_many(*, sku_id: int, wants: Sequence[tuple[int, int]],
                         unit_price: Decimal | None = None) -> dict[int, list[tuple[int, bytes]]]:
    """PostgreSQL: sell keys of one SKU to many paid orders at once, `wants` being (order id, quantity) pairs, every
    order paying `unit_price` per unit (as for `card_keys_claim`).

    The same claim as `card_keys_claim` — source by source in plan order, each a scan from a random start that
    skips rows other buyers hold, wrapping once, guarded by `status = 'available'` — in one statement for all the
    orders (two when the scan wraps, two more per further source). Returns each order's (id, ciphertext) pairs in
    id order. Raises `ClaimShortError` when the stock cannot cover every order: some keys may be claimed by then
    (it says how many), so the caller must roll its transaction back.
    """
    return card_keys_claim_many_send(sku_id=sku_id, wants=wants, unit_price=unit_price)()


_BOUNDS = ("id >= %(start)s", "id < %(start)s")


def card_keys_claim_many_send(*, sku_id: int, wants: Sequence[tuple[int, int]], unit_price: Decimal | None = None,
                              cursor: Any = None) -> Callable[[], dict[int, list[tuple[int, bytes]]]]:
    """`card_keys_claim_many` in two steps: send its first statement now and return the function that reads its
    answer (and claims on, statement by statement, when the scan wraps or a source runs short), returning or
    raising what `card_keys_claim_many` does. Inside `kameng.core.sql.statements_pipelined` the claim travels with the
    statements sent after it, and on a `kameng.core.sql.OneMessage` cursor with that message; call the function
    after the block (or the message)."""
    params: dict[str, Any] = {"status": CardKeyStatus.SOLD, "now": timezone.now(), "sku_id": sku_id}
    steps = [(source, start, bound) for source, start in _starts(sku_id, unit_price) for bound in _BOUNDS]
    if cursor is None:
        cursor = connection.cursor()

    def execute(source: _Source, start: int, bound: str, remaining: list[tuple[int, int]]) -> None:
        params["start"], params["supplier_id"] = start, source.supplier_id
        params["wants"] = json_rows({"position": position, "order_id": order_id, "quantity": quantity}
                                    for position, (order_id, quantity) in enumerate(remaining))
        params["limit"] = sum(quantity for _, quantity in remaining)
        cursor.execute(_PG_CLAIM_MANY.format(range=bound + source.sql), params)

    if steps:
        execute(*steps[0], list(wants))

    def claimed_keys() -> dict[int, list[tuple[int, bytes]]]:
        claimed: dict[int, list[tuple[int, bytes]]] = {order_id: [] for order_id, _ in wants}
        remaining = list(wants)
        with cursor:
            for index, (source, start, bound) in enumerate(steps):
                if index:
                    execute(source, start, bound, remaining)
                for key_id, order_id, secret in cursor.fetchall():
                    claimed[order_id].append((key_id, bytes(secret)))
                remaining = [(order_id, quantity - len(claimed[order_id])) for order_id, quantity in wants
                             if len(claimed[order_id]) < quantity]
                if not remaining:
                    return {order_id: sorted(keys) for order_id, keys in claimed.items()}
                if bound == _BOUNDS[-1]:
                    _bounds.pop(sku_id, None)  # a source ran short: rebuild the plan at the next claim
        raise ClaimShortError(sum(len(keys) for keys in claimed.values()))

    return claimed_keys


def _claim_portable(sku_id: int, order_id: int, quantity: int, status: str, *, source: _Source,
                    start: int) -> list[tuple[int, bytes]]:
    now = timezone.now()
    claimed: list[int] = []
    for bound in (Q(id__gte=start), Q(id__lt=start)):
        for _attempt in range(5):
            need = quantity - len(claimed)
            if need <= 0:
                break
            candidates = list(
                _available(sku_id).filter(bound, source.q).order_by("id").select_for_update(skip_locked=True)
                .values_list("id", flat=True)[:need]
            )
            if not candidates:
                break
            updated = CardKey.objects.filter(id__in=candidates, status=CardKeyStatus.AVAILABLE).update(
                status=status, order_id=order_id, sold_at=now)
            if updated == len(candidates):
                claimed.extend(candidates)
            else:  # another writer took some of them between our read and our update: keep what we got
                claimed.extend(CardKey.objects.filter(id__in=candidates, order_id=order_id).values_list(
                    "id", flat=True))
    rows = CardKey.objects.filter(id__in=claimed).values_list("id", "secret_ciphertext")
    return [(pk, bytes(secret)) for pk, secret in rows]


def card_keys_sell_reserved(*, order_id: int) -> int:
    """Turn the order's reserved keys into sold ones; returns how many."""
    return CardKey.objects.filter(order_id=order_id, status=CardKeyStatus.RESERVED).update(
        status=CardKeyStatus.SOLD, sold_at=timezone.now())


def card_keys_release(*, order_id: int) -> int:
    """Give an unpaid order's reserved keys back to stock; returns how many."""
    released = CardKey.objects.filter(order_id=order_id, status=CardKeyStatus.RESERVED).update(
        status=CardKeyStatus.AVAILABLE, order_id=None, sold_at=None)
    if released:
        card_keys_sold_out_forget()
    return released


def card_keys_return_undelivered(*, order_id: int) -> int:
    """Give back to stock every key an order holds but never delivered: its reserved keys and those a failed
    delivery had already marked sold before the rest ran out (no secret was shown: only delivered orders show
    theirs). Returns how many."""
    returned = CardKey.objects.filter(
        order_id=order_id, status__in=[CardKeyStatus.RESERVED, CardKeyStatus.SOLD],
    ).update(status=CardKeyStatus.AVAILABLE, order_id=None, sold_at=None)
    if returned:
        card_keys_sold_out_forget()
    return returned


def card_keys_void(*, card_key_ids: Sequence[int]) -> int:
    """Withdraw available keys from sale (staff action). Reserved and sold keys are left alone."""
    return CardKey.objects.filter(id__in=card_key_ids, status=CardKeyStatus.AVAILABLE).update(
        status=CardKeyStatus.VOID)


def decrypt_secrets(ciphertexts: Sequence[bytes]) -> list[str]:
    ring = keyring()
    context = SECRET_CONTEXT.encode()
    return [ring.decrypt(token, context=context).decode() for token in ciphertexts]
