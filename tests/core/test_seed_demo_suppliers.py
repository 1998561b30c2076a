"""seed_demo's suppliers: two approved Fulu suppliers on the supplier simulator, competing on direct top-ups."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from kameng.catalog.models import DeliveryKind, Product
from kameng.simulators.supplier.app import merchant_from_dict
from kameng.simulators.supplier.core import SupplierSimulator
from kameng.suppliers.connectors.base import Outcome, TopupKind, TopupRequest
from kameng.suppliers.connectors.fulu import FuluConnector
from kameng.suppliers.connectors.registry import connector_config_of
from kameng.suppliers.models import ConnectorKind, Supplier, SupplierOffer, SupplierStatus

pytestmark = pytest.mark.django_db


def _seed() -> dict[str, Any]:
    out = StringIO()
    call_command("seed_demo", "--json", keys_per_sku=1, stdout=out)
    return json.loads(out.getvalue())


def test_two_approved_fulu_suppliers_on_the_simulator_with_encrypted_configs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAMENG_SUPPLIER_SIM_URL", "http://127.0.0.1:8191/")

    seeded = _seed()

    suppliers = list(Supplier.objects.order_by("pk"))
    assert [(s.name, s.status, s.connector_kind) for s in suppliers] == [
        ("星河数卡", SupplierStatus.APPROVED, ConnectorKind.FULU),
        ("云充科技", SupplierStatus.APPROVED, ConnectorKind.FULU)]
    configs = [connector_config_of(supplier) for supplier in suppliers]
    assert [config["gateway_url"] for config in configs] == ["http://127.0.0.1:8191/api/getway"] * 2
    assert [config["app_key"] for config in configs] == ["demo-xinghe", "demo-yunchong"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT connector_config FROM suppliers_supplier")
        raw = " ".join(str(row[0]) for row in cursor.fetchall())
    assert all(config["app_secret"] not in raw and "demo-xinghe" not in raw for config in configs)
    simulator = seeded["supplier_simulator"]
    assert [m["notify_url"] for m in simulator["merchants"]] == [
        f"{settings.SITE_URL}/suppliers/callback/{supplier.pk}/" for supplier in suppliers]
    assert [m["app_secret"] for m in simulator["merchants"]] == [config["app_secret"] for config in configs]
    assert {login["username"] for login in seeded["logins"]} >= {"supplier-xinghe", "supplier-yunchong"}


def test_direct_topup_products_with_a_form_and_an_offer_from_each_supplier() -> None:
    _seed()

    phone = Product.objects.get(name="全国三网话费直充")
    game = Product.objects.get(name="星海传说 钻石直充")
    assert (phone.delivery_kind, game.delivery_kind) == (DeliveryKind.DIRECT_TOPUP, DeliveryKind.DIRECT_TOPUP)
    assert phone.topup_form == [{"name": "phone", "label": "手机号", "kind": "phone", "required": True}]
    assert [(field["name"], field["kind"], field["required"]) for field in game.topup_form] == [
        ("account", "text", True), ("region", "select", True), ("role", "text", False)]
    offers = {(offer.sku.name, offer.supplier.name): (offer.price, offer.upstream_product_id)
              for offer in SupplierOffer.objects.select_related("sku", "supplier")}
    assert offers == {
        ("30 元", "星河数卡"): (Decimal("29.40"), "10030"), ("30 元", "云充科技"): (Decimal("29.69"), "10030"),
        ("50 元", "星河数卡"): (Decimal("49.00"), "10050"), ("50 元", "云充科技"): (Decimal("49.49"), "10050"),
        ("100 元", "星河数卡"): (Decimal("98.00"), "10100"), ("100 元", "云充科技"): (Decimal("98.98"), "10100"),
        ("60 钻石", "星河数卡"): (Decimal("5.70"), "20060"), ("60 钻石", "云充科技"): (Decimal("5.60"), "20060"),
        ("300 钻石", "星河数卡"): (Decimal("28.50"), "20300"), ("300 钻石", "云充科技"): (Decimal("28.20"), "20300"),
        ("680 钻石", "星河数卡"): (Decimal("64.60"), "20680"), ("680 钻石", "云充科技"): (Decimal("63.90"), "20680"),
        ("月卡", "星河数卡"): (Decimal("17.50"), "30001"), ("月卡", "云充科技"): (Decimal("17.68"), "30001"),
    }
    cards = Product.objects.get(name="影音会员月卡（上游卡密）")
    assert (cards.delivery_kind, cards.topup_form) == (DeliveryKind.CARD_KEY, [])
    assert all(offer.price < offer.sku.price for offer in SupplierOffer.objects.select_related("sku"))


def test_reseeding_keeps_the_secrets_and_adds_nothing() -> None:
    first = _seed()
    counts = (Supplier.objects.count(), SupplierOffer.objects.count(), Product.objects.count())

    second = _seed()

    assert (Supplier.objects.count(), SupplierOffer.objects.count(), Product.objects.count()) == counts == (2, 14, 10)
    assert first["supplier_simulator"] == second["supplier_simulator"]


def test_the_seeded_connector_is_accepted_by_a_simulator_started_with_the_seed_output() -> None:
    seeded = _seed()
    simulator = SupplierSimulator(merchants=[merchant_from_dict(m) for m in seeded["supplier_simulator"]["merchants"]])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = simulator.gateway(request.content)
        return httpx.Response(answer.status, json=answer.body)

    for supplier in Supplier.objects.order_by("pk"):
        connector = FuluConnector(connector_config_of(supplier),
                                  client=httpx.Client(transport=httpx.MockTransport(handler)))
        answer = connector.topup_submit(TopupRequest(f"K-{supplier.pk}", TopupKind.MOBILE, "10030", 1,
                                                     charge_account="13812345678", face_value=Decimal("30")))
        assert answer.outcome == Outcome.PROCESSING
    assert simulator.submissions_report()["orders"] == 2


def test_the_demo_vip_buyers_price_for_a_top_up_still_covers_every_suppliers_cost() -> None:
    from kameng.accounts.models import User
    from kameng.catalog.pricing import SALES_CHANNEL_STOREFRONT, sku_price
    from kameng.catalog.selectors import skus_for_sale

    _seed()
    vip4 = User.objects.get(username="vip4")
    for sku_id in Product.objects.filter(delivery_kind=DeliveryKind.DIRECT_TOPUP).values_list("skus", flat=True):
        sku = skus_for_sale(sku_ids=[sku_id])[sku_id]
        price = sku_price(sku=sku, buyer_id=vip4.pk, quantity=1, sales_channel=SALES_CHANNEL_STOREFRONT).unit_price
        assert price >= max(SupplierOffer.objects.filter(sku_id=sku_id).values_list("price", flat=True))


def test_the_demo_suppliers_are_fully_onboarded_and_a_new_supplier_can_accept_the_agreement(
        settings: Any, tmp_path: Any, client: Any) -> None:
    from kameng.suppliers.models import AgreementAcceptance, SupplierAgreement, SupplierProfile
    from kameng.suppliers.onboarding import agreement_current, onboarding_missing, parse_credit_code, supplier_apply
    from tests.factories import UserFactory

    settings.KAMENG_SUPPLIER_DOCUMENTS_DIR = tmp_path / "documents"
    _seed()
    _seed()  # twice: the same rows

    agreement = agreement_current()
    assert agreement is not None
    assert (agreement.version, SupplierAgreement.objects.count()) == ("2026.1", 1)
    for supplier in Supplier.objects.order_by("pk"):
        assert onboarding_missing(supplier=supplier) == []
        profile = SupplierProfile.objects.get(supplier=supplier)
        assert parse_credit_code(profile.credit_code) == profile.credit_code
        assert supplier.documents.count() == 2
        assert AgreementAcceptance.objects.filter(supplier=supplier, agreement=agreement).count() == 1
        client.force_login(supplier.owner)
        page = client.get("/supplier/").content.decode()
        assert "阅读并同意最新版供货商协议" not in page
        assert profile.company_name in client.get("/supplier/company/").content.decode()

    newcomer = supplier_apply(user_id=UserFactory.create().pk, name="新来的供货商")
    client.force_login(newcomer.owner)
    assert "2026.1" in client.get("/supplier/agreement/").content.decode()
    response = client.post("/supplier/agreement/", {"agreement_id": agreement.pk})
    assert response.status_code == 302
    assert AgreementAcceptance.objects.filter(supplier=newcomer, agreement=agreement).exists()
