"""Stored and reflected XSS: payloads planted in everything a buyer, reseller or supplier can name (product and SKU
names and descriptions, categories, usernames, supplier names, order delivery notes, after-sales notes and staff's
answers, sub-site title and notice,
reseller application notes, API key names, routing-rule notes, AML and risk reasons, search terms) come out of
every page that shows them escaped: the storefront, the sub-site, the reseller and supplier consoles and the staff
admin (changelists, change pages, search). The real-browser check (no dialog fires) is
tests/e2e/test_browser_xss.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from kameng.accounts.models import User
from kameng.after_sales.models import AfterSalesRequest, AfterSalesStatus
from kameng.catalog.models import Product, Sku
from kameng.core.ids import public_number
from kameng.orders.models import Order
from kameng.orders.services import order_checkout
from kameng.payments.models import AmlReason, AmlReview, ChannelKind, Payment, PaymentChannel, PaymentPurpose
from kameng.resellers.apikeys import api_key_create
from kameng.resellers.models import ApiKey, Reseller, ResellerStatus, ResellerTier, SubSite
from kameng.risk.models import RiskEvent
from kameng.suppliers.models import RoutingRuleKind, SkuRoutingRule, Supplier, SupplierOffer
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory, UserFactory, fund_wallet, stock_sku
from tests.resellers.subsite_support import fresh_subsite_caches

pytestmark = pytest.mark.django_db
__all__ = ["fresh_subsite_caches"]

# 55 characters: fits every name field (the shortest is 60).
PAYLOAD = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
LINK = "javascript:alert(1)"
LONG = f"{PAYLOAD}\n{LINK}\n'><svg onload=alert(1)>"

RAW = ("<script>alert(1)", "<img src=x onerror", "<svg onload", 'href="javascript:', "href='javascript:",
       'src="javascript:')
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;")


@dataclass
class Planted:
    buyer: User
    product: Product
    sku: Sku
    order: Order
    topup: Payment
    supplier: Supplier
    offer: SupplierOffer
    rule: SkuRoutingRule
    reseller: Reseller
    subsite: SubSite
    key: ApiKey
    aml: AmlReview
    risk: RiskEvent
    after_sales: AfterSalesRequest


def plant() -> Planted:
    buyer = UserFactory.create(username=PAYLOAD)
    sku = SkuFactory.create(name=PAYLOAD, price=Decimal("10.00"), product__name=PAYLOAD, product__description=LONG,
                            product__category__name=PAYLOAD)
    stock_sku(sku, 3, prefix="XSS")
    fund_wallet(buyer, "10.00", reference="xss-fund")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order
    Order.objects.filter(pk=order.pk).update(delivery_note=LONG)

    channel = PaymentChannel.objects.create(code="xss-epay", name=PAYLOAD, kind=ChannelKind.EPAY_V1,
                                            gateway_url="https://pay.example.com/", merchant_id="1001",
                                            merchant_key="xss-merchant-key-0123456789abcdef")
    topup = Payment.objects.create(number=public_number("P"), user_id=buyer.pk, channel=channel,
                                   purpose=PaymentPurpose.WALLET_TOPUP, amount=Decimal("6000.00"))
    aml = AmlReview.objects.create(number=public_number("A"), payment=topup, user=buyer, amount=topup.amount,
                                   reason=AmlReason.SINGLE_OVER_THRESHOLD, reason_detail=PAYLOAD,
                                   rejection_reason=PAYLOAD)
    risk = RiskEvent.objects.create(kind="xss", message=PAYLOAD, detail={"note": PAYLOAD}, user=buyer)
    # The buyer's after-sales note (售后申请) and staff's answer, shown on the order page, 我的售后 and the admin queue.
    after_sales = AfterSalesRequest.objects.create(number=public_number("S"), order=order, buyer=buyer,
                                                   reason="other", note=LONG, staff_reply=PAYLOAD,
                                                   status=AfterSalesStatus.REJECTED)

    supplier = SupplierFactory.create(name=PAYLOAD)
    offer = SupplierOfferFactory.create(supplier=supplier, sku=sku, upstream_product_id="XSS-1")
    rule = SkuRoutingRule.objects.create(sku=sku, supplier=supplier, kind=RoutingRuleKind.PIN, note=PAYLOAD)

    tier = ResellerTier.objects.create(name="XSS 等级", subsite_markup_cap_percent=Decimal("50.00"))
    reseller = Reseller.objects.create(user=UserFactory.create(username="r" + PAYLOAD), tier=tier,
                                       status=ResellerStatus.ACTIVE,
                                       application_note=LONG, review_reason=PAYLOAD)
    subsite = SubSite.objects.create(reseller=reseller, slug="xss", title=PAYLOAD, notice=LONG,
                                     markup_kind="percent", markup_value=Decimal("10.00"))
    key = api_key_create(reseller_id=reseller.pk, name=PAYLOAD).key
    return Planted(buyer=buyer, product=sku.product, sku=sku, order=order, topup=topup, supplier=supplier,
                   offer=offer, rule=rule, reseller=reseller, subsite=subsite, key=key, aml=aml, risk=risk,
                   after_sales=after_sales)


def assert_escaped(body: str, page: str, *, shows: bool = True) -> None:
    raw = [marker for marker in RAW if marker in body]
    assert not raw, f"{page}: unescaped {raw}"
    if shows:
        assert any(marker in body for marker in ESCAPED), f"{page}: the planted text is not shown at all"


def _get(client: Client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.content.decode()


def test_the_storefront_and_the_sub_site_escape_what_buyers_and_resellers_wrote(client: Client) -> None:
    planted = plant()
    search = reverse("web:search") + "?q=" + quote(PAYLOAD)
    short_search = reverse("web:search") + "?q=" + quote("<script>alert(1)</script>")
    pages = {"home": "/", "product": reverse("web:product", args=[planted.product.pk]), "search": search,
             "search (found)": short_search,
             "sub-site home": f"/s/{planted.subsite.slug}/",
             "sub-site product": f"/s/{planted.subsite.slug}{reverse('web:product', args=[planted.product.pk])}",
             "sub-site search": f"/s/{planted.subsite.slug}{search}"}
    for page, url in pages.items():
        # A term longer than the catalogue's search allows is refused (400) on a page that still shows it.
        assert_escaped(_get(client, url, 400 if page.endswith("search") else 200), page)

    client.force_login(planted.buyer)
    buyer_pages = {"order list": reverse("web:order_list"),
                   "order detail": reverse("web:order_detail", args=[planted.order.number]),
                   "account": reverse("web:account"), "wallet": reverse("web:wallet"),
                   "after-sales list": reverse("web:after_sales_list"),
                   "top-up under review": reverse("web:topup_status", args=[planted.topup.number])}
    for page, url in buyer_pages.items():
        assert_escaped(_get(client, url), page)


def test_the_reseller_console_escapes_its_key_names_and_sub_site_texts(client: Client) -> None:
    planted = plant()
    client.force_login(planted.reseller.user)

    for name in ("web:reseller_home", "web:reseller_apikeys", "web:reseller_subsite", "web:reseller_prices"):
        assert_escaped(_get(client, reverse(name)), name)
    assert_escaped(_get(client, reverse("web:reseller_apikey_edit", args=[planted.key.pk])), "api key edit")


def test_the_supplier_console_escapes_names_it_shows(client: Client) -> None:
    planted = plant()
    client.force_login(planted.supplier.owner)

    for name in ("web:supplier_home", "web:supplier_offers", "web:supplier_orders", "web:supplier_restock"):
        assert_escaped(_get(client, reverse(name)), name, shows=name != "web:supplier_orders")
    assert_escaped(_get(client, reverse("web:supplier_offer_edit", args=[planted.offer.pk])), "offer edit")


def _admin_pages(planted: Planted) -> dict[str, str]:
    objects: list[Model] = [planted.buyer, planted.product, planted.product.category, planted.sku, planted.order,
                            planted.topup, planted.topup.channel, planted.supplier, planted.offer, planted.rule,
                            planted.reseller, planted.subsite, planted.key, planted.aml, planted.risk,
                            planted.after_sales]
    pages = {}
    for obj in objects:
        meta = obj._meta
        prefix = f"admin:{meta.app_label}_{meta.model_name}"
        pages[f"{meta.model_name} changelist"] = reverse(f"{prefix}_changelist")
        pages[f"{meta.model_name} change"] = reverse(f"{prefix}_change", args=[obj.pk])
    pages["product search"] = reverse("admin:catalog_product_changelist") + "?q=" + quote(PAYLOAD)
    pages["order search"] = reverse("admin:orders_order_changelist") + "?q=" + quote(PAYLOAD)
    return pages


def test_the_admin_escapes_every_planted_text(admin_client: Client) -> None:
    planted = plant()

    for page, url in _admin_pages(planted).items():
        response = admin_client.get(url)
        assert response.status_code == 200, (page, url, response.status_code)
        # A change page shows names in its inputs (value="&lt;script…") or read-only; a search shows the term.
        assert_escaped(response.content.decode(), page)
