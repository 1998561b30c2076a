"""The demo's reseller: tiers, ¥100,000 wallet, sub-site row (10 % over the reseller's cost), the printed Open API
key that works."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from kameng.catalog.pricing import SALES_CHANNEL_OPENAPI, sku_price, subsite_channel
from kameng.catalog.selectors import skus_for_sale
from kameng.core.money import money
from kameng.core.openapi_signing import openapi_signed_headers
from kameng.demo import _openapi_lines
from kameng.ledger.selectors import wallet_balance
from kameng.resellers.models import MarkupKind, Reseller, ResellerStatus, ResellerTier, SubSite

pytestmark = pytest.mark.django_db


def test_the_demo_reseller_and_its_key_work(client: Client) -> None:
    out = StringIO()
    call_command("seed_demo", "--json", keys_per_sku=2, stdout=out)
    seeded = json.loads(out.getvalue())
    call_command("seed_demo", "--json", keys_per_sku=2, stdout=StringIO())  # again: nothing new

    reseller = Reseller.objects.get(user__username="reseller-demo")
    assert sorted(ResellerTier.objects.values_list("name", flat=True)) == sorted(["普通代理", "高级代理", "总代理"])
    assert (reseller.status, reseller.tier.name if reseller.tier else "") == (ResellerStatus.ACTIVE, "高级代理")
    assert wallet_balance(user_id=reseller.user_id) == Decimal("100000.00")
    assert SubSite.objects.get(reseller=reseller).slug == "demo"
    assert any(login["username"] == "reseller-demo" for login in seeded["logins"])
    openapi = seeded["openapi"]
    path = f"/openapi/v1/products/{openapi['sku_id']}"
    headers = openapi_signed_headers(key_id=openapi["key"], secret=openapi["secret"], method="GET",
                                     path_with_query=path, body=b"", timestamp=int(time.time()),
                                     nonce="demo-nonce-000001")
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    assert response.json()["stock"] == 20
    lines = _openapi_lines("http://127.0.0.1:8000", seeded)
    assert f"KAMENG_DEMO_OPENAPI_KEY={openapi['key']}" in lines
    assert f"KAMENG_DEMO_OPENAPI_SECRET={openapi['secret']}" in lines


def test_the_demo_subsite_sells_above_the_resellers_cost(client: Client) -> None:
    seeded = json.loads(_seed())
    reseller = Reseller.objects.get(user__username="reseller-demo")
    subsite = SubSite.objects.get(reseller=reseller)
    sku = skus_for_sale(sku_ids=[seeded["openapi"]["sku_id"]])[seeded["openapi"]["sku_id"]]
    cost = sku_price(sku=sku, buyer_id=reseller.user_id, quantity=1, sales_channel=SALES_CHANNEL_OPENAPI).unit_price
    on_subsite = sku_price(sku=sku, buyer_id=0, quantity=1, sales_channel=subsite_channel(subsite.pk)).unit_price

    page = client.get(f"/s/demo/products/{sku.product_id}/").content.decode()

    assert (subsite.markup_kind, subsite.markup_value) == (MarkupKind.PERCENT, Decimal("10.00"))
    assert cost == money(sku.price * Decimal("0.90"))  # 高级代理: 10 % off retail
    assert on_subsite == money(cost * Decimal("1.10")) > cost
    assert str(on_subsite) in page
    assert str(cost) not in page


def test_a_demo_subsite_left_at_zero_by_an_earlier_seed_gets_the_markup_but_an_edited_one_is_kept() -> None:
    _seed()
    subsite = SubSite.objects.get(reseller__user__username="reseller-demo")
    seeded_at = timezone.now() - timedelta(days=1)  # a demo seeded yesterday, before the markup existed
    SubSite.objects.filter(pk=subsite.pk).update(markup_value=Decimal("0.00"), created_at=seeded_at,
                                                 updated_at=seeded_at)

    _seed()  # that demo's next start-up
    assert SubSite.objects.get(pk=subsite.pk).markup_value == Decimal("10.00")

    subsite = SubSite.objects.get(pk=subsite.pk)
    subsite.markup_value = Decimal("0.00")
    subsite.save()  # the reseller set 0 % in its console
    _seed()
    assert SubSite.objects.get(pk=subsite.pk).markup_value == Decimal("0.00")


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", "--json", keys_per_sku=2, stdout=out)
    return out.getvalue()
