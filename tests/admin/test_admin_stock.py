"""Stock in the back office follows an import or a void at once: staff never see the storefront's cached count."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from kameng.catalog.models import Sku
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.inventory.selectors import stock_by_sku
from tests.factories import SkuFactory, stock_sku

pytestmark = pytest.mark.django_db


def _live_stock_shown(client: Client, sku: Sku) -> str:
    """The 可售库存 cell of the product's one SKU row (the inline's empty template row comes after it)."""
    page = client.get(reverse("admin:catalog_product_change", args=[sku.product_id])).content.decode()
    cells = re.findall(r'field-live_stock[^>]*>(.*?)</td>', page, flags=re.S)
    return re.sub(r"<[^>]+>", "", cells[0]).strip()


def test_the_product_page_shows_stock_just_imported(admin_client: Client) -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 3)
    assert stock_by_sku([sku.pk]) == {sku.pk: 3}  # the storefront has just cached the count
    assert _live_stock_shown(admin_client, sku) == "3"

    response = admin_client.post(reverse("admin:inventory_cardkeybatch_import_sku", args=[sku.pk]),
                                 {"sku": sku.pk, "text": "NEW-1\nNEW-2\nNEW-3\nNEW-4\nNEW-5\n"})

    assert response.status_code == 302
    assert CardKey.objects.filter(sku=sku, status=CardKeyStatus.AVAILABLE).count() == 8
    assert _live_stock_shown(admin_client, sku) == "8"


def test_the_product_page_shows_stock_just_voided(admin_client: Client) -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 4)
    assert _live_stock_shown(admin_client, sku) == "4"
    keys = list(CardKey.objects.filter(sku=sku).values_list("pk", flat=True)[:3])

    response = admin_client.post(reverse("admin:inventory_cardkey_changelist"),
                                 {"action": "void_available", "_selected_action": keys})

    assert response.status_code == 302
    assert CardKey.objects.filter(sku=sku, status=CardKeyStatus.AVAILABLE).count() == 1
    assert _live_stock_shown(admin_client, sku) == "1"
