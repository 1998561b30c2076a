"""The demo's reseller: tiers, ¥100,000 wallet, sub-site row, the printed Open API key that works."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from kameng.core.openapi_signing import openapi_signed_headers
from kameng.demo import _openapi_lines
from kameng.ledger.selectors import wallet_balance
from kameng.resellers.models import Reseller, ResellerStatus, ResellerTier, SubSite

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
