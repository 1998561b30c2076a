"""What a walk through the reseller features in a browser found, kept fixed: the console menu of a pending reseller,
the buyer's view of a sub-site order, API key names, reactivating an applicant, the batch page's refusals, the
per-SKU markup form and the callback log's long responses."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from kameng.core.errors import ConflictError
from kameng.orders.models import Order
from kameng.resellers.apikeys import api_key_create, api_key_update
from kameng.resellers.models import ResellerStatus, SubSitePrice
from kameng.resellers.services import ResellerStateError, reseller_reactivate
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.resellers.subsite_support import RULES, fresh_subsite_caches, subsite_create
from tests.resellers.support import reseller_make, tier_make

pytestmark = pytest.mark.django_db
__all__ = ["fresh_subsite_caches"]

NAV_RE = re.compile(r'<nav class="card console-nav".*?</nav>', re.S)


def _nav_links(page: str) -> list[str]:
    found = NAV_RE.search(page)
    assert found is not None
    return re.findall(r'href="([^"]+)"', found.group(0))


def test_a_pending_reseller_is_offered_only_the_overview(client: Client) -> None:
    pending = reseller_make(None, status=ResellerStatus.PENDING)
    client.force_login(pending.user)
    page = client.get(reverse("web:reseller_home")).content.decode()
    assert _nav_links(page) == [reverse("web:reseller_home")]  # the others answer 404 to it


def test_an_approved_reseller_gets_the_menu_in_the_order_of_use(client: Client) -> None:
    active = reseller_make(tier_make())
    client.force_login(active.user)
    links = _nav_links(client.get(reverse("web:reseller_home")).content.decode())
    assert links[:4] == [reverse(name) for name in ("web:reseller_home", "web:reseller_prices", "web:reseller_batch",
                                                     "web:reseller_subsite")]
    assert len(links) == 9
    for link in links:
        assert client.get(link).status_code == 200, link


def test_the_callback_log_wraps_long_values_instead_of_using_the_page_container_class() -> None:
    from pathlib import Path

    import kameng.web

    template = Path(kameng.web.__file__).parent / "templates/web/reseller/notifications.html"
    text = template.read_text(encoding="utf-8")
    assert 'class="wrap"' not in text  # .wrap is the page's container (max-width, padding)
    assert text.count('class="break-anywhere"') == 2
