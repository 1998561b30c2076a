"""Membership tests hear of delivered and refunded orders: the test settings switch the aftercare listeners off."""

from __future__ import annotations

import pytest
from pytest_django.fixtures import Settings

LISTENER = "kameng.membership.services.membership_orders_count"


@pytest.fixture(autouse=True)
def _membership_listening(settings: Settings) -> None:
    settings.KAMENG_ORDER_AFTERCARE = [LISTENER]
