"""The checkout endpoint with its checkout replaced by a canned answer: what the framework alone costs per request.

`bench/checkout.py --floor` serves this after the real runs. Everything else is the production path — granian,
every middleware, the session from Redis, the user row from PostgreSQL, CSRF, ninja's parsing, validation and
rendering — so its requests/s is the ceiling any checkout can reach on this stack and machine. It writes nothing.
"""

# ruff: noqa: I001 - kameng.wsgi sets Django up, so it comes before the imports that load models.
from decimal import Decimal

from kameng.wsgi import application
from kameng.api import shop
from kameng.orders.models import Order, OrderStatus
from kameng.purchases.services import PurchaseResult

__all__ = ["application"]

_CANNED = Order(pk=1, number="K000000000000000000000", title="压测点卡 10 元", quantity=1,
                unit_price=Decimal("9.50"), total_amount=Decimal("9.50"), status=OrderStatus.DELIVERED)


def _canned_purchase(**_request: object) -> PurchaseResult:
    return PurchaseResult(order=_CANNED, created=True, secrets=["CANNED-SECRET"])


shop.purchase_create = _canned_purchase  # type: ignore[assignment]  # the one thing this server does differently
