"""Supplier settlement (供货商结算) with tax withholding (代扣代缴): what each delivered order owes its suppliers.

When: on delivery. There is no confirmation period — a supplier's goods are delivered the moment the order is
(card keys handed over, the top-up confirmed by the operator), and a later refund is taken back by a reversal
(below), so holding the money for a while would protect nothing the reversal does not.

What: each supplier that delivered the order is credited at its cost —
- card-key orders: the order's card keys with `CardKey.supplier` set, at `CardKey.cost` (the supplier's price when
  the key was taken; a key without a cost counts ¥0.00 and is logged);
- direct top-ups: the SUCCEEDED `TopupAttempt`, at `attempt.cost` (the attempt's total, not a unit price);
- card keys bought upstream (kameng.suppliers.upstream_cards): by their keys, as above (each stored with the
  supplier and the attempt's unit cost), never by the attempt as well.
Keys of the platform's own stock (no supplier) settle nothing.

The journal (kameng.ledger.recipes.supplier_settlement): platform revenue → tax withheld + the supplier's payable.
Tax = cost × the supplier's `tax_rate`, rounded half up to the fen (四舍五入到分); the payable gets the rest. The
rate is copied onto the `SupplierSettlement` at first settlement: a later change of the rate never changes how an
existing settlement is reversed. If the supplier owes the platform (see reversals), its settlements pay that debt
down first and only the rest reaches the payable.

Refunds (full or partial) reverse proportionally, by target: the settled cost should be the delivered cost × the
share of the order's cash the buyer kept (0 once refunded in full), the tax the tax of that cost by the same rule;
the difference from what is booked is posted as a reversal journal (never an edit). The reversal takes the tax back
first, then what the supplier's payable still holds; whatever the supplier has already withdrawn is recorded as its
debt (`supplier_debt`, a debit-normal account of its own), so the payable never goes below zero and the ledger's
no-negative guard holds.

Idempotent: one `SupplierSettlement` per (order, supplier) (a unique constraint), locked while it moves, and each run
posts only the difference between the order's state and what is booked; journals are referenced
`order:<number>:supplier:<id>:<n>`. The aftercare listener `settlement_aftercare` runs on every delivery and refund;
the sweeper `settlements_sweep` (a periodic task) settles any recent order the listener missed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet, Sum
from django.utils import timezone

from kameng.catalog.models import DeliveryKind
from kameng.core.money import ZERO, money
from kameng.inventory.models import CardKey
from kameng.ledger import recipes
from kameng.ledger.models import Account, AccountKind
from kameng.ledger.services import journal_draft_post, owner_account_id
from kameng.orders.aftercare import aftercare_orders
from kameng.orders.models import Order, OrderStatus
from kameng.suppliers.models import (
    AttemptStatus,
    SettlementMovement,
    SettlementMovementKind,
    Supplier,
    SupplierSettlement,
    TopupAttempt,
)

logger = logging.getLogger(__name__)

S = OrderStatus
# States of an order whose suppliers are (or were) owed something: delivered, then perhaps refunded.
SETTLED_STATUSES: frozenset[str] = frozenset({S.DELIVERED, S.COMPLETED, S.AFTER_SALES, S.PARTIALLY_REFUNDED,
                                              S.REFUNDED})


def tax_of(cost: Decimal, rate: Decimal) -> Decimal:
    """The tax withheld on `cost` at `rate`: rounded half up to the fen (97.00 × 3% = 2.91; 0.50 × 3% = 0.02)."""
    return money(cost * rate)


def settlement_aftercare(*, order_ids: list[int], event: str) -> None:
    """The aftercare listener (KAMENG_ORDER_AFTERCARE): bring each order's settlements in line with its state.

    The run's shared read of the orders says which hold a supplier's card keys. Top-ups are looked up only for
    orders without any card key (a card-key order is delivered with its keys at checkout and never goes to a
    top-up supplier), so a batch of orders of the platform's own stock costs no query here."""
    orders = [order for order in aftercare_orders(order_ids).values() if order.status in SETTLED_STATUSES]
    settle = {order.id for order in orders if order.holds_supplier_keys}
    without_keys = [order.id for order in orders if not order.holds_card_keys]
    if without_keys:
        settle.update(_with_supplier_goods(Order.objects.filter(pk__in=without_keys)))
    for order_id in sorted(settle):
        order_suppliers_settle(order_id=order_id)


def _with_supplier_goods(orders: QuerySet[Order]) -> list[int]:
    supplier_keys = CardKey.objects.filter(order_id=OuterRef("pk"), supplier__isnull=False)
    topups = TopupAttempt.objects.filter(order_id=OuterRef("pk"), status=AttemptStatus.SUCCEEDED)
    return list(orders.filter(status__in=SETTLED_STATUSES).filter(Exists(supplier_keys) | Exists(topups))
                .order_by("pk").values_list("pk", flat=True))


def order_supplier_costs(*, order_id: int) -> dict[int, Decimal]:
    """Supplier id → the cost the order's delivery owes it (module docstring)."""
    costs: dict[int, Decimal] = {}
    keys = (CardKey.objects.filter(order_id=order_id, supplier__isnull=False).values("supplier_id")
            .annotate(total=Sum("cost")).order_by())
    for row in keys:
        if CardKey.objects.filter(order_id=order_id, supplier_id=row["supplier_id"], cost__isnull=True).exists():
            logger.warning("order %s: card keys of supplier %s without a cost count ¥0.00", order_id,
                           row["supplier_id"])
        costs[row["supplier_id"]] = money(row["total"] or ZERO)
    # A card-key order bought upstream is settled by its keys (each with the supplier and cost): not by its attempt.
    attempts = (TopupAttempt.objects.filter(order_id=order_id, status=AttemptStatus.SUCCEEDED)
                .exclude(order__sku__product__delivery_kind=DeliveryKind.CARD_KEY).values("supplier_id").annotate(total=Sum("cost")).order_by())
    for row in attempts:
        costs[row["supplier_id"]] = money(costs.get(row["supplier_id"], ZERO) + (row["total"] or ZERO))
    return costs


def kept_share(order: Order) -> Decimal:
    """The share of the order the buyer kept: 1 while nothing is refunded, 0 once refunded in full."""
    if order.status == S.REFUNDED:
        return Decimal(0)
    if order.total_amount <= ZERO:  # paid wholly in points: nothing of it comes back as money
        return Decimal(1)
    return (order.total_amount - order.refunded_amount) / order.total_amount


def order_suppliers_settle(*, order_id: int) -> list[SupplierSettlement]:
    """Post what the order's settlements lack or have too much of; nothing when they are right (or the order
    was never delivered). Returns the order's settlements."""
    order = Order.objects.filter(pk=order_id).only("status").first()
    if order is None or order.status not in SETTLED_STATUSES:
        return []
    costs = order_supplier_costs(order_id=order_id)
    return [_supplier_settle(order_id=order_id, supplier_id=supplier_id, delivered_cost=cost)
            for supplier_id, cost in sorted(costs.items()) if cost > ZERO]


def _supplier_settle(*, order_id: int, supplier_id: int, delivered_cost: Decimal) -> SupplierSettlement:
    with transaction.atomic():
        record = _record_lock(order_id=order_id, supplier_id=supplier_id, delivered_cost=delivered_cost)
        order = Order.objects.get(pk=order_id)  # read after the lock: the state the last refund committed
        supplier = Supplier.objects.only("owner_id", "name").get(pk=supplier_id)
        target_cost = money(record.delivered_cost * kept_share(order))
        target_tax = tax_of(target_cost, record.tax_rate)
        change = target_cost - record.cost
        if change == ZERO:
            return record
        record.journals += 1
        reference = f"order:{order.number}:supplier:{supplier_id}:{record.journals}"
        owner_id = supplier.owner_id
        payable_id = owner_account_id(user_id=owner_id, kind=AccountKind.SUPPLIER_PAYABLE)
        debt_id = owner_account_id(user_id=owner_id, kind=AccountKind.SUPPLIER_DEBT)
        payable, debt = _locked_balances(payable_id, debt_id)
        if change > ZERO:
            tax = min(max(target_tax - record.tax, ZERO), change)
            debt_repaid = min(debt, change - tax)
            journal = journal_draft_post(draft=recipes.supplier_settlement(
                reference=reference, memo=f"结算 {order.title}"[:200], owner_id=owner_id, cost=change, tax=tax,
                debt_repaid=debt_repaid))
            movement = SettlementMovement(kind=SettlementMovementKind.SETTLEMENT, cost=change, tax=tax,
                                          payable=change - tax - debt_repaid, debt=debt_repaid)
        else:
            cost = -change
            tax = min(max(record.tax - target_tax, ZERO), cost)
            from_payable = min(payable, cost - tax)
            as_debt = cost - tax - from_payable
            journal = journal_draft_post(draft=recipes.supplier_settlement_reversal(
                reference=reference, memo=f"退款冲回 {order.title}"[:200], owner_id=owner_id, cost=cost, tax=tax,
                from_payable=from_payable, as_debt=as_debt))
            if as_debt:
                logger.info("order %s: supplier %s had withdrawn ¥%s of a reversal: recorded as its debt",
                            order.number, supplier_id, as_debt)
            movement = SettlementMovement(kind=SettlementMovementKind.REVERSAL, cost=cost, tax=tax,
                                          payable=from_payable, debt=as_debt)
            tax = -tax
        movement.settlement = record
        movement.supplier_id = supplier_id
        movement.journal = journal
        movement.save()
        record.cost = target_cost
        record.tax = money(record.tax + tax)
        record.save(update_fields=["cost", "tax", "journals", "updated_at"])
    return record


def _record_lock(*, order_id: int, supplier_id: int, delivered_cost: Decimal) -> SupplierSettlement:
    """The (order, supplier) settlement row, locked: two runs for one order take turns. Created at ¥0.00 booked,
    with the delivered cost and the supplier's tax rate of now."""
    if not SupplierSettlement.objects.filter(order_id=order_id, supplier_id=supplier_id).exists():
        rate = Supplier.objects.filter(pk=supplier_id).values_list("tax_rate", flat=True).get()
        try:
            with transaction.atomic():
                SupplierSettlement.objects.create(order_id=order_id, supplier_id=supplier_id, tax_rate=rate,
                                                  delivered_cost=delivered_cost, cost=ZERO, tax=ZERO)
        except IntegrityError:  # created by a concurrent run in between
            pass
    return SupplierSettlement.objects.select_for_update().get(order_id=order_id, supplier_id=supplier_id)


def _locked_balances(payable_id: int, debt_id: int) -> tuple[Decimal, Decimal]:
    rows = dict(Account.objects.select_for_update().filter(pk__in=[payable_id, debt_id]).order_by("pk")
                .values_list("pk", "balance"))
    return rows[payable_id], rows[debt_id]


def settlements_sweep(*, now: datetime | None = None) -> int:
    """Settle every order changed within KAMENG_SUPPLIER_SETTLEMENT_SWEEP_HOURS that has supplier goods (the
    listener's safety net: a lost task, a broker down). Returns how many orders were looked at."""
    since = (now or timezone.now()) - timedelta(hours=settings.KAMENG_SUPPLIER_SETTLEMENT_SWEEP_HOURS)
    order_ids = _with_supplier_goods(Order.objects.filter(updated_at__gte=since))
    for order_id in order_ids:
        try:
            order_suppliers_settle(order_id=order_id)
        except Exception:  # one bad order must not stop the sweep; the next run tries it again
            logger.exception("settling order %s failed", order_id)
    return len(order_ids)
