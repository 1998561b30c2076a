from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from kameng.catalog.models import DeliveryKind, ProductStatus
from kameng.suppliers.models import OfferStockSource, SupplierOffer, SupplierStatus
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory
from tests.suppliers.onboarding_helpers import agreement_publish

pytestmark = pytest.mark.django_db


def _form(sku_id: int, **changes: str) -> dict[str, str]:
    return {"sku": str(sku_id), "price": "9.20", "stock_source": OfferStockSource.UPSTREAM,
            "upstream_product_id": "FL-1001", "max_per_day": "500", "is_active": "on", **changes}


def test_an_approved_supplier_creates_an_offer(client: Client) -> None:
    supplier = SupplierFactory.create()
    sku = SkuFactory.create(product__name="话费快充", name="100 元")
    client.force_login(supplier.owner)

    response = client.post("/supplier/offers/", _form(sku.pk))

    assert response.status_code == 302
    offer = SupplierOffer.objects.get()
    assert (offer.supplier_id, offer.sku_id, offer.price, offer.stock_source, offer.upstream_product_id,
            offer.max_per_day, offer.is_active) == (supplier.pk, sku.pk, Decimal("9.20"), "upstream", "FL-1001",
                                                    500, True)
    page = client.get("/supplier/offers/").content.decode()
    assert "话费快充 · 100 元" in page
    assert "¥9.20" in page


@pytest.mark.parametrize(("price", "message"), [("0", "供货价必须大于 0"), ("-1", "供货价必须大于 0"),
                                                ("abc", "请输入有效的金额"), ("1.234", "供货价最多两位小数")])
def test_a_price_not_above_zero_is_refused(client: Client, price: str, message: str) -> None:
    supplier = SupplierFactory.create()
    sku = SkuFactory.create()
    client.force_login(supplier.owner)

    response = client.post("/supplier/offers/", _form(sku.pk, price=price))

    assert response.status_code == 400
    assert message in response.content.decode()
    assert SupplierOffer.objects.count() == 0


def test_one_offer_per_sku(client: Client) -> None:
    supplier = SupplierFactory.create()
    existing = SupplierOfferFactory.create(supplier=supplier)
    client.force_login(supplier.owner)

    response = client.post("/supplier/offers/", _form(existing.sku_id, price="5.00"))

    assert response.status_code == 409
    assert "您已为该规格创建过报价，请直接修改原报价" in response.content.decode()
    assert SupplierOffer.objects.get().price == Decimal("9.00")


def test_another_supplier_may_offer_the_same_sku(client: Client) -> None:
    existing = SupplierOfferFactory.create()
    supplier = SupplierFactory.create()
    client.force_login(supplier.owner)

    response = client.post("/supplier/offers/", _form(existing.sku_id, price="8.00"))

    assert response.status_code == 302
    assert SupplierOffer.objects.filter(sku=existing.sku).count() == 2


def test_an_upstream_offer_needs_its_upstream_product_id(client: Client) -> None:
    supplier = SupplierFactory.create()
    sku = SkuFactory.create()
    client.force_login(supplier.owner)

    response = client.post("/supplier/offers/", _form(sku.pk, upstream_product_id=" "))

    assert response.status_code == 400
    assert "库存来源为上游接口时，请填写上游商品编号" in response.content.decode()
    assert SupplierOffer.objects.count() == 0


def test_card_key_stock_only_for_a_card_key_product(client: Client) -> None:
    supplier = SupplierFactory.create()
    topup = SkuFactory.create(product__delivery_kind=DeliveryKind.DIRECT_TOPUP)
    cards = SkuFactory.create(product__delivery_kind=DeliveryKind.CARD_KEY)
    client.force_login(supplier.owner)

    refused = client.post("/supplier/offers/", _form(topup.pk, stock_source=OfferStockSource.CARD_KEYS))
    accepted = client.post("/supplier/offers/", _form(cards.pk, stock_source=OfferStockSource.CARD_KEYS))

    assert refused.status_code == 400
    assert "该商品不是卡密发货" in refused.content.decode()
    assert accepted.status_code == 302
    offer = SupplierOffer.objects.get()
    assert (offer.sku_id, offer.upstream_product_id) == (cards.pk, "")


def test_a_sku_off_sale_cannot_be_offered(client: Client) -> None:
    supplier = SupplierFactory.create()
    sku = SkuFactory.create(product__status=ProductStatus.OFF_SHELF)
    client.force_login(supplier.owner)

    response = client.post("/supplier/offers/", _form(sku.pk))

    assert response.status_code == 400
    assert SupplierOffer.objects.count() == 0


@pytest.mark.parametrize("status", [SupplierStatus.DRAFT, SupplierStatus.NEEDS_MORE,
                                    SupplierStatus.REJECTED, SupplierStatus.SUSPENDED])
def test_only_an_approved_supplier_creates_offers_and_the_page_says_why(client: Client, status: str) -> None:
    supplier = SupplierFactory.create(status=status)
    sku = SkuFactory.create()
    client.force_login(supplier.owner)

    page = client.get("/supplier/offers/").content.decode()
    response = client.post("/supplier/offers/", _form(sku.pk))

    assert 'data-testid="offers-refusal"' in page
    assert "提交审核后才能创建报价、上传卡密" in page
    assert response.status_code == 409
    assert SupplierOffer.objects.count() == 0


def test_an_approved_supplier_must_accept_a_new_agreement_before_editing(client: Client) -> None:
    supplier = SupplierFactory.create()
    sku = SkuFactory.create()
    agreement_publish("v3")
    client.force_login(supplier.owner)

    response = client.post("/supplier/offers/", _form(sku.pk))

    assert response.status_code == 409
    assert "供货商协议已更新" in response.content.decode()
    assert SupplierOffer.objects.count() == 0


def test_the_supplier_edits_its_offer(client: Client) -> None:
    offer = SupplierOfferFactory.create()
    client.force_login(offer.supplier.owner)

    page = client.get(f"/supplier/offers/{offer.pk}/")
    response = client.post(f"/supplier/offers/{offer.pk}/", {"price": "7.50", "stock_source": "upstream",
                                                             "upstream_product_id": "NEW-1", "max_per_day": ""})

    assert page.status_code == 200
    assert response.status_code == 302
    offer.refresh_from_db()
    assert (offer.price, offer.upstream_product_id, offer.max_per_day, offer.is_active) == (
        Decimal("7.50"), "NEW-1", None, False)


def test_an_edit_with_a_zero_price_changes_nothing(client: Client) -> None:
    offer = SupplierOfferFactory.create()
    client.force_login(offer.supplier.owner)

    response = client.post(f"/supplier/offers/{offer.pk}/", {"price": "0.00", "stock_source": "upstream",
                                                             "upstream_product_id": "NEW-1"})

    assert response.status_code == 400
    assert "供货价必须大于 0" in response.content.decode()
    offer.refresh_from_db()
    assert (offer.price, offer.upstream_product_id) == (Decimal("9.00"), offer.upstream_product_id)


def test_the_list_shows_only_the_suppliers_own_offers(client: Client) -> None:
    mine = SupplierOfferFactory.create(sku__product__name="我的商品")
    SupplierOfferFactory.create(sku__product__name="别人的商品")
    client.force_login(mine.supplier.owner)

    page = client.get("/supplier/offers/").content.decode()

    assert "我的商品" in page
    assert page.count('data-testid="offer-row"') == 1
    assert "别人的商品 ·" not in page.split('data-testid="offer-create"')[0]


def test_a_supplier_under_review_prepares_offers_for_its_sample_test_but_sells_nothing(client: Client) -> None:
    from kameng.suppliers.card_key_bidding import card_key_sources

    supplier = SupplierFactory.create(status=SupplierStatus.PENDING_REVIEW)
    sku = SkuFactory.create(product__delivery_kind=DeliveryKind.CARD_KEY)
    client.force_login(supplier.owner)

    response = client.post("/supplier/offers/", _form(sku.pk, stock_source=OfferStockSource.CARD_KEYS,
                                                      upstream_product_id=""))

    offer = SupplierOffer.objects.get(supplier=supplier)
    assert response.status_code == 302
    assert (offer.sku_id, offer.price) == (sku.pk, Decimal("9.20"))
    assert supplier.pk not in [source.supplier_id for source in card_key_sources(sku.pk) or []]  # not routed yet
