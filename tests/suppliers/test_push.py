"""The supplier's signed price/stock push: a good signature updates the offers; a forged, stale, replayed or
malformed push is refused with its status and changes nothing; a supplier id that takes no push is answered as a
forgery is, so ids cannot be enumerated."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.test import Client

from kameng.core.errors import ApplicationError
from kameng.suppliers.models import Supplier, SupplierOffer, SupplierStatus
from kameng.suppliers.sync import PUSH_MAX_BYTES, supplier_push_receive
from tests.factories import SupplierFactory, SupplierOfferFactory

pytestmark = pytest.mark.django_db

SECRET = "push-secret-0123456789"


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    cache.clear()


def signed_headers(body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"HTTP_X_KAMENG_TIMESTAMP": stamp, "HTTP_X_KAMENG_SIGNATURE": signature}


def push(client: Client, supplier_id: int, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    response = client.post(f"/suppliers/push/{supplier_id}/", data=body, content_type="application/json",
                           **headers)  # type: ignore[arg-type]
    return response.status_code, response.json()


def offer_with_push() -> SupplierOffer:
    supplier = SupplierFactory.create(connector_config=json.dumps({"push_secret": SECRET}))
    return SupplierOfferFactory.create(supplier=supplier, upstream_product_id="A-60", price=Decimal("9.00"),
                                       upstream_stock=10)


BODY = json.dumps([{"product_id": "A-60", "price": "8.70", "stock": 3}]).encode()


def test_a_signed_push_updates_price_and_stock(client: Client) -> None:
    offer = offer_with_push()

    status, answer = push(client, offer.supplier_id, BODY, signed_headers(BODY))

    assert (status, answer["updated"]) == (200, 1)
    offer.refresh_from_db()
    assert (offer.price, offer.upstream_stock) == (Decimal("8.70"), 3)
    assert offer.synced_at is not None


def test_a_forged_push_is_401_and_changes_nothing(client: Client) -> None:
    offer = offer_with_push()

    status, answer = push(client, offer.supplier_id, BODY, signed_headers(BODY, secret="guessed"))

    assert (status, answer["code"]) == (401, "push_signature_invalid")
    offer.refresh_from_db()
    assert (offer.price, offer.upstream_stock, offer.synced_at) == (Decimal("9.00"), 10, None)


def test_a_push_with_a_tampered_body_is_401(client: Client) -> None:
    offer = offer_with_push()
    headers = signed_headers(BODY)
    tampered = BODY.replace(b"8.70", b"0.01")

    status, _answer = push(client, offer.supplier_id, tampered, headers)

    assert status == 401
    offer.refresh_from_db()
    assert offer.price == Decimal("9.00")


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_stale_push_is_400_and_changes_nothing(client: Client, skew: int) -> None:
    offer = offer_with_push()

    status, answer = push(client, offer.supplier_id, BODY, signed_headers(BODY, timestamp=int(time.time()) + skew))

    assert (status, answer["code"]) == (400, "push_timestamp_stale")
    assert "300 秒" in str(answer["message"])
    offer.refresh_from_db()
    assert (offer.price, offer.synced_at) == (Decimal("9.00"), None)


def test_a_push_within_the_skew_is_accepted(client: Client) -> None:
    offer = offer_with_push()

    status, _answer = push(client, offer.supplier_id, BODY, signed_headers(BODY, timestamp=int(time.time()) - 290))

    assert status == 200


def test_the_same_push_sent_twice_is_refused_the_second_time(client: Client) -> None:
    offer = offer_with_push()
    headers = signed_headers(BODY)
    assert push(client, offer.supplier_id, BODY, headers)[0] == 200
    SupplierOffer.objects.filter(pk=offer.pk).update(price=Decimal("9.10"))

    status, answer = push(client, offer.supplier_id, BODY, headers)

    assert (status, answer["code"]) == (409, "push_replayed")
    offer.refresh_from_db()
    assert offer.price == Decimal("9.10")


@pytest.mark.parametrize(("body", "message"), [
    (b"not json", "推送内容不是 JSON"),
    (b"[]", "非空的 JSON 数组"),
    (json.dumps([{"product_id": "A-60", "price": "8.70"}, {"price": "1"}]).encode(), "第 2 项缺少 product_id"),
    (json.dumps([{"product_id": "A-60", "price": "-1"}]).encode(), "第 1 项的价格无效"),
    (json.dumps([{"product_id": "A-60", "price": "1.001"}]).encode(), "第 1 项的价格无效"),
    (json.dumps([{"product_id": "A-60", "price": "1", "stock": -2}]).encode(), "第 1 项的库存无效"),
])
def test_a_malformed_push_is_400_and_changes_nothing(client: Client, body: bytes, message: str) -> None:
    offer = offer_with_push()

    status, answer = push(client, offer.supplier_id, body, signed_headers(body))

    assert status == 400
    assert message in str(answer["message"])
    offer.refresh_from_db()
    assert (offer.price, offer.upstream_stock, offer.synced_at) == (Decimal("9.00"), 10, None)


FORGED = (401, {"code": "push_signature_invalid", "message": "签名无效：请用该供货商的价格推送密钥签名"})


@pytest.mark.parametrize("who", ["unknown id", "no push secret", "rejected supplier", "unreadable config"])
def test_a_supplier_id_that_takes_no_push_is_answered_as_a_bad_signature(client: Client, who: str) -> None:
    """Status and body the same as a forgery's: a caller cannot tell which supplier ids exist."""
    forged_on = offer_with_push()
    supplier = SupplierFactory.create()
    if who == "no push secret":
        SupplierOfferFactory.create(supplier=supplier, upstream_product_id="A-60")
    if who == "rejected supplier":
        supplier.status = SupplierStatus.REJECTED
        supplier.connector_config = json.dumps({"push_secret": SECRET})
        supplier.save()
    if who == "unreadable config":
        Supplier.objects.filter(pk=supplier.pk).update(connector_config="not json")
    supplier_id = supplier.pk + 1000 if who == "unknown id" else supplier.pk

    refused = push(client, supplier_id, BODY, signed_headers(BODY))
    forged = push(client, forged_on.supplier_id, BODY, signed_headers(BODY, secret="guessed"))
    unsigned = push(client, supplier_id, BODY, {})

    assert refused == forged == unsigned == FORGED
    forged_on.refresh_from_db()
    assert forged_on.synced_at is None


def test_an_oversized_push_is_refused_before_the_supplier_is_looked_up(client: Client) -> None:
    offer = offer_with_push()
    big = b"[" + b" " * PUSH_MAX_BYTES + b"]"

    known = push(client, offer.supplier_id, big, signed_headers(big))
    unknown = push(client, offer.supplier_id + 1000, big, signed_headers(big))

    assert known == unknown == (413, {"code": "push_too_large", "message": "推送内容过大（上限 1 MB）"})
    for supplier_id in (offer.supplier_id, offer.supplier_id + 1000):  # a body without its length told, too
        with pytest.raises(ApplicationError) as refused:
            supplier_push_receive(supplier_id=supplier_id, body=big, timestamp="1", signature="x")
        assert (refused.value.status_code, refused.value.code) == (400, "push_too_large")


def test_a_push_needs_post(client: Client) -> None:
    offer = offer_with_push()

    assert client.get(f"/suppliers/push/{offer.supplier_id}/").status_code == 405
