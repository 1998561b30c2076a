"""Notifications of Open API orders to the reseller's notify_url: scheduling, signed delivery with retries, the
attempt log."""

from __future__ import annotations


def order_notify_schedule(*, order_id: int) -> None:
    """Schedule the notification of the order's current status if it is final and the order came through the Open
    API with a notify_url; idempotent (one delivery per order and status). Called by the Open API after it
    recorded the order, and by the aftercare listener."""
