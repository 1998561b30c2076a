"""Low stock and restock requests (低库存补货提醒).

Each active offer of an approved supplier is held against its product's `low_stock_threshold`: a card-key offer
counts the supplier's available card keys of the SKU (`CardKey.supplier`), an upstream offer reads its synced
`upstream_stock` (an upstream that does not say is never short). When the stock is at or below the threshold one
RestockRequest is raised for the offer — never a second while one is open (a partial unique constraint) — and the
supplier is told after commit: on its console page, by a signed webhook and by e-mail
(kameng.suppliers.restock_notify). When the stock is back above the threshold the open request closes by itself.

The check runs periodically (`kameng.suppliers.tasks.check_restock`) and, for the SKUs just sold, from the order
aftercare listener `restock_orders_delivered`, which only enqueues a task: nothing of it runs in the checkout.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from kameng.core.errors import ConflictError, NotFoundError
from kameng.core.tasks import enqueue_after_commit
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.suppliers.connectors.registry import connector_config_of
from kameng.suppliers.models import (
    OfferStockSource,
    RestockRequest,
    RestockStatus,
    SupplierOffer,
    SupplierStatus,
    WebhookStatus,
)

logger = logging.getLogger(__name__)

OPEN_STATUSES = (RestockStatus.OPEN, RestockStatus.ACKNOWLEDGED)
# The moves a supplier may make on its request; anything else is refused.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    RestockStatus.OPEN: (RestockStatus.ACKNOWLEDGED, RestockStatus.RESTOCKED),
    RestockStatus.ACKNOWLEDGED: (RestockStatus.RESTOCKED,),
    RestockStatus.RESTOCKED: (),
}


def offer_stock_levels(offers: Iterable[SupplierOffer]) -> dict[int, int | None]:
    """Offer id → its stock now: available card keys of the supplier for card-key offers (one query for all),
    the synced upstream stock for the others (None: the upstream does not say)."""
    offers = list(offers)
    card_offers = [offer for offer in offers if offer.stock_source == OfferStockSource.CARD_KEYS]
    counts: dict[tuple[int, int], int] = {}
    if card_offers:
        rows = (CardKey.objects.filter(status=CardKeyStatus.AVAILABLE,
                                       supplier_id__in={offer.supplier_id for offer in card_offers},
                                       sku_id__in={offer.sku_id for offer in card_offers})
                .values("supplier_id", "sku_id").annotate(available=Count("id")))
        counts = {(row["supplier_id"], row["sku_id"]): row["available"] for row in rows}
    return {offer.pk: counts.get((offer.supplier_id, offer.sku_id), 0)
            if offer.stock_source == OfferStockSource.CARD_KEYS else offer.upstream_stock for offer in offers}


def restock_check(*, sku_ids: Iterable[int] | None = None) -> list[int]:
    """Raise a request for every offer at or below its threshold that has none open, and close the open ones
    whose stock is back above it. Returns the ids of the requests raised. Idempotent."""
    offers = (SupplierOffer.objects.filter(is_active=True, supplier__status=SupplierStatus.APPROVED)
              .select_related("sku__product", "supplier").order_by("pk"))
    if sku_ids is not None:
        offers = offers.filter(sku_id__in=list(sku_ids))
    offers_list = list(offers)
    if not offers_list:
        return []  # the usual answer after a sale of the platform's own stock: one query, nothing more
    levels = offer_stock_levels(offers_list)
    open_offers = set(RestockRequest.objects.filter(offer_id__in=[offer.pk for offer in offers_list],
                                                    status__in=OPEN_STATUSES).values_list("offer_id", flat=True))
    raised: list[int] = []
    recovered: list[int] = []
    for offer in offers_list:
        stock = levels[offer.pk]
        if stock is None:
            continue
        threshold = offer.sku.product.low_stock_threshold
        if stock <= threshold and offer.pk not in open_offers:
            request = restock_request_raise(offer=offer, stock=stock, threshold=threshold)
            if request is not None:
                raised.append(request.pk)
        elif stock > threshold and offer.pk in open_offers:
            recovered.append(offer.pk)
    if recovered:
        RestockRequest.objects.filter(offer_id__in=recovered, status__in=OPEN_STATUSES).update(
            status=RestockStatus.RESTOCKED, restocked_at=timezone.now())
    return raised


def restock_request_raise(*, offer: SupplierOffer, stock: int, threshold: int) -> RestockRequest | None:
    """One open request for the offer and its notices after commit; None when one is already open (a concurrent
    check raised it first)."""
    from kameng.suppliers.tasks import notify_restock

    has_webhook = bool(connector_config_of(offer.supplier).get("webhook_url"))
    try:
        with transaction.atomic():
            request = RestockRequest.objects.create(
                offer=offer, supplier_id=offer.supplier_id, stock_at_raise=stock, threshold=threshold,
                webhook_status=WebhookStatus.PENDING if has_webhook else WebhookStatus.NONE,
                webhook_next_at=timezone.now() if has_webhook else None)
    except IntegrityError:
        return None
    logger.info("restock request %s raised for supplier %s offer %s (stock %s, threshold %s)", request.pk,
                offer.supplier_id, offer.pk, stock, threshold)
    enqueue_after_commit(notify_restock, request.pk)
    return request


def restock_request_move(*, supplier_id: int, request_id: int, to: str) -> RestockRequest:
    """The supplier acknowledges its request or marks it restocked. Another supplier's request is not found."""
    request = RestockRequest.objects.filter(pk=request_id, supplier_id=supplier_id).first()
    if request is None:
        raise NotFoundError("补货提醒不存在", code="restock_not_found")
    allowed_from = [status for status, targets in TRANSITIONS.items() if to in targets]
    now = timezone.now()
    stamp = {"acknowledged_at": now} if to == RestockStatus.ACKNOWLEDGED else {"restocked_at": now}
    moved = RestockRequest.objects.filter(pk=request.pk, status__in=allowed_from).update(status=to, **stamp)
    if not moved:
        raise ConflictError("该补货提醒当前为「%(status)s」，不能再这样处理", code="restock_transition_invalid",
                            params={"status": request.get_status_display()})
    request.refresh_from_db()
    return request


def _offered_skus(sku_ids: list[int]) -> list[int]:
    """Which of these SKUs some supplier offers (an active offer), in id order: a plain statement on PostgreSQL (it
    runs after every checkout batch, where the ORM would spend more CPU building it than the database running it)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT sku_id FROM suppliers_supplieroffer WHERE is_active AND sku_id = ANY(%s) "
                           "ORDER BY sku_id", [sku_ids])
            return [row[0] for row in cursor.fetchall()]
    return sorted(set(SupplierOffer.objects.filter(sku_id__in=sku_ids, is_active=True)
                      .values_list("sku_id", flat=True)))


def restock_orders_delivered(*, order_ids: list[int], event: str) -> None:
    """Order aftercare listener (KAMENG_ORDER_AFTERCARE): check the stock of the SKUs just delivered, in a task."""
    from kameng.orders.aftercare import aftercare_orders
    from kameng.suppliers.tasks import check_restock_skus

    if event != "delivered":
        return
    # Only SKUs some supplier offers: the platform's own stock raises no restock request, and costs no task. The
    # SKUs come from the run's shared read of the orders; one small query on the offers.
    delivered = sorted({order.sku_id for order in aftercare_orders(order_ids).values()})
    sku_ids = _offered_skus(delivered) if delivered else []
    if sku_ids:
        check_restock_skus.delay(sku_ids)
