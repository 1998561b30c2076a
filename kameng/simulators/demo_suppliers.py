"""Two demo suppliers wired to the supplier simulator, and the direct top-up products they compete on, for
`make demo` (seed_demo) — never for production.

Each supplier is an approved 供货商 with its own console login, reached through the Fulu connector (config encrypted
at rest) at the simulator's gateway, as one of the simulator's merchants (kameng.simulators.supplier.catalog). Its
offers cost what the simulator charges that merchant, so the two compete SKU by SKU. The app secrets are made on
the first run and kept; re-running only follows a changed simulator URL or SITE_URL. `demo_suppliers_ensure`
returns what the simulator must be started with (its merchants, secrets included) and what the banner shows.

Onboarding is complete as a reviewed supplier's would be: a published, versioned supplier agreement (供货商协议,
which a new supplier applying in the demo reads and accepts too), and for each demo supplier its company data
(企业资料, a valid 统一社会信用代码), its legal person's real name (verified as the demo's, fictional people), its
business licence and industry authorisation (placeholder files in the private documents directory) and its
acceptance of the agreement — so its console shows nothing missing.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from kameng.accounts.identity import check_character
from kameng.accounts.models import RealName, RealNameStatus, User
from kameng.accounts.selectors import identity_index_of
from kameng.catalog.models import Category, DeliveryKind, Product, ProductStatus, Sku
from kameng.simulators.supplier.catalog import DEMO_MERCHANTS, DEMO_PRICE_OVERRIDES, goods_by_id, price_for
from kameng.suppliers.documents import supplier_document_upload
from kameng.suppliers.models import (
    AgreementAcceptance,
    ConnectorKind,
    DocumentKind,
    OfferStockSource,
    Supplier,
    SupplierAgreement,
    SupplierOffer,
    SupplierProfile,
    SupplierStatus,
)
from kameng.suppliers.onboarding import credit_code_check_character, onboarding_missing

DEFAULT_SIMULATOR_URL = "http://127.0.0.1:8090"
CATEGORY = ("direct-topup", "话费 / 游戏直充", 5)
PHONE_FORM = [{"name": "phone", "label": "手机号", "kind": "phone", "required": True}]
GAME_REGIONS = ["华东一区", "华南二区", "华北三区"]
GAME_FORM = [
    {"name": "account", "label": "游戏账号", "kind": "text", "required": True},
    {"name": "region", "label": "区服", "kind": "select", "options": GAME_REGIONS, "required": True},
    {"name": "role", "label": "角色名", "kind": "text", "required": False},
]
USERNAMES = {"demo-xinghe": "supplier-xinghe", "demo-yunchong": "supplier-yunchong"}
AGREEMENT_VERSION = "2026.1"
AGREEMENT_TEXT = """kameng 供货商协议（演示版 2026.1）

一、供货商保证所供商品来源合法，已取得品牌方或上级渠道的授权，并在平台上传相应的商品授权协议。
二、供货商按报价向平台供货；平台按订单成交价结算，并依法代扣代缴增值税及附加税费。
三、直充订单以平台订单号为幂等键：同一订单号只能充值一次；结果未知时须支持查询，不得重复充值。
四、供货商应保证卡密真实有效、未被使用；因卡密无效或充值失败产生的售后由供货商承担。
五、平台按成功率、到账时长、售后率、价格竞争力与库存稳定性综合评定星级，并据此分配订单。
六、本协议更新时，平台将在供货商后台提示，供货商须阅读并同意新版本后方可继续供货。

本文件仅用于演示环境。"""


@dataclass(frozen=True)
class CompanySeed:
    """A demo supplier's company (fictional), its legal person and contact."""

    company_name: str
    credit_code_17: str  # the check character is computed (GB 32100-2015)
    legal_person_name: str
    legal_person_id_17: str  # the check digit is computed (GB 11643-1999)
    contact_name: str
    contact_phone: str
    business_scope: str


COMPANIES = {
    "demo-xinghe": CompanySeed("杭州星河数卡网络科技有限公司", "91330106MA2B3C4D5", "周星河", "33010619850312101",
                               "陈小雨", "13800138001", "话费充值、游戏点卡及虚拟商品销售"),
    "demo-yunchong": CompanySeed("深圳云充科技有限公司", "91440300MA5F6G7H8", "林云川", "44030519880620102",
                                 "黄晓明", "13800138002", "话费流量充值、游戏直充技术服务"),
}
# Placeholder qualification files (the smallest a PDF and a PNG the upload check accepts).
PLACEHOLDER_PDF = b"%PDF-1.4\n% kameng demo placeholder\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PLACEHOLDER_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@dataclass(frozen=True)
class TopupSkuSeed:
    name: str
    face_value: str
    price: str  # what the buyer pays
    upstream_product_id: str


@dataclass(frozen=True)
class TopupProductSeed:
    name: str
    description: str
    form: list[dict[str, Any]]
    skus: tuple[TopupSkuSeed, ...]
    delivery_kind: str = DeliveryKind.DIRECT_TOPUP


PRODUCTS = (
    TopupProductSeed(
        "全国三网话费直充",
        "移动、联通、电信手机号直充，下单后自动提交运营商，一般 1–10 分钟到账；到账后订单显示运营商流水号。",
        PHONE_FORM,
        (TopupSkuSeed("30 元", "30", "29.90", "10030"), TopupSkuSeed("50 元", "50", "49.80", "10050"),
         TopupSkuSeed("100 元", "100", "99.60", "10100")),
    ),
    TopupProductSeed(
        "星海传说 钻石直充", "填写游戏账号和区服，钻石直接充入角色，无需卡密。角色名选填，用于核对。",
        GAME_FORM,
        (TopupSkuSeed("60 钻石", "6", "5.98", "20060"), TopupSkuSeed("300 钻石", "30", "29.80", "20300"),
         TopupSkuSeed("680 钻石", "68", "67.50", "20680")),
    ),
    # Card keys with no stock on the platform: each order is bought from the simulator (fulu.order.card.add) and
    # its keys delivered when the upstream answers (kameng.suppliers.upstream_cards).
    TopupProductSeed(
        "影音会员月卡（上游卡密）", "卡密由上游供货商实时供货：下单后向供货商取卡，一般几秒内到账，在订单页查看卡密。",
        [], (TopupSkuSeed("月卡", "20", "19.90", "30001"),), delivery_kind=DeliveryKind.CARD_KEY,
    ),
)


def simulator_url() -> str:
    """Where the supplier simulator listens: `python -m kameng.demo` sets KAMENG_SUPPLIER_SIM_URL."""
    return os.environ.get("KAMENG_SUPPLIER_SIM_URL", DEFAULT_SIMULATOR_URL).rstrip("/")


def supplier_callback_url(supplier_id: int) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/suppliers/callback/{supplier_id}/"


def _supplier_ensure(app_key: str, name: str, *, password: str, gateway_url: str) -> tuple[Supplier, dict[str, Any]]:
    owner, created = User.objects.get_or_create(username=USERNAMES[app_key])
    if created:
        owner.set_password(password)
        owner.save(update_fields=["password"])
    supplier, _ = Supplier.objects.get_or_create(owner=owner, defaults={
        "name": name, "status": SupplierStatus.APPROVED, "connector_kind": ConnectorKind.FULU,
        "approved_at": timezone.now()})
    config = json.loads(str(supplier.connector_config or "{}"))
    wanted = {"gateway_url": f"{gateway_url}/api/getway", "app_key": app_key,
              "app_secret": config.get("app_secret") or secrets.token_hex(16), "app_auth_token": "", "timeout": 10}
    if config != wanted:
        supplier.connector_config = json.dumps(wanted)
        supplier.save(update_fields=["connector_config"])
    return supplier, wanted


def _products_ensure() -> list[tuple[Sku, str]]:
    slug, category_name, sort_order = CATEGORY
    category, _ = Category.objects.get_or_create(slug=slug, defaults={"name": category_name, "sort_order": sort_order})
    skus = []
    for product_order, seed in enumerate(PRODUCTS):
        product, _ = Product.objects.get_or_create(category=category, name=seed.name, defaults={
            "description": seed.description, "delivery_kind": seed.delivery_kind, "topup_form": seed.form,
            "status": ProductStatus.ON_SALE, "max_quantity": 1 if seed.form is PHONE_FORM else 10,
            "sort_order": product_order})
        for sku_order, sku_seed in enumerate(seed.skus):
            sku, _ = Sku.objects.get_or_create(product=product, name=sku_seed.name, defaults={
                "face_value": Decimal(sku_seed.face_value), "price": Decimal(sku_seed.price), "sort_order": sku_order})
            skus.append((sku, sku_seed.upstream_product_id))
    return skus


def demo_suppliers_ensure(*, password: str) -> dict[str, Any]:
    """Suppliers, products and offers; returns {"simulator": {url, merchants}, "suppliers": [banner lines]}."""
    url = simulator_url()
    skus = _products_ensure()
    goods = goods_by_id()
    merchants, banner = [], []
    for demo in DEMO_MERCHANTS:
        supplier, config = _supplier_ensure(demo.app_key, demo.name, password=password, gateway_url=url)
        prices = {product_id: price for (key, product_id), price in DEMO_PRICE_OVERRIDES.items()
                  if key == demo.app_key}
        for sku, product_id in skus:
            cost = price_for(goods[product_id], price_factor=demo.price_factor, override=prices.get(product_id))
            SupplierOffer.objects.update_or_create(supplier=supplier, sku=sku, defaults={
                "price": cost, "stock_source": OfferStockSource.UPSTREAM, "upstream_product_id": product_id,
                "is_active": True, "synced_at": timezone.now()})
        merchants.append({"app_key": demo.app_key, "app_secret": config["app_secret"], "name": demo.name,
                          "notify_url": supplier_callback_url(supplier.pk), "price_factor": str(demo.price_factor),
                          "prices": {key: str(value) for key, value in prices.items()}})
        banner.append({"name": supplier.name, "username": supplier.owner.username, "app_key": demo.app_key,
                       "notify_url": supplier_callback_url(supplier.pk), "offers": len(skus)})
    _floor_prices_ensure(skus)
    agreement = agreement_ensure()
    for demo in DEMO_MERCHANTS:
        _onboarding_ensure(Supplier.objects.get(owner__username=USERNAMES[demo.app_key]), COMPANIES[demo.app_key],
                           agreement)
    return {"simulator": {"url": url, "gateway_url": f"{url}/api/getway", "merchants": merchants},
            "suppliers": banner}


def _floor_prices_ensure(skus: list[tuple[Sku, str]]) -> None:
    """A member discount stops at what the dearer supplier costs (the SKU's floor price): otherwise a VIP's price
    is below every offer, routing never sells at a loss, and the order is refunded for want of a supplier."""
    for sku, _ in skus:
        highest = max(SupplierOffer.objects.filter(sku=sku).values_list("price", flat=True))
        if sku.floor_price is None or sku.floor_price < highest:
            Sku.objects.filter(pk=sku.pk).update(floor_price=min(highest, sku.price))


def agreement_ensure() -> SupplierAgreement:
    """The demo's published supplier agreement (the current one unless staff published a newer version)."""
    agreement, _ = SupplierAgreement.objects.get_or_create(version=AGREEMENT_VERSION, defaults={
        "text": AGREEMENT_TEXT, "published_at": timezone.now() - timedelta(days=1)})
    return agreement


def _onboarding_ensure(supplier: Supplier, company: CompanySeed, agreement: SupplierAgreement) -> None:
    """What a reviewed supplier has done, written as it stands (the demo suppliers are approved, past editing):
    company data, the legal person's real name, the two required documents, the agreement accepted."""
    if not SupplierProfile.objects.filter(supplier=supplier).exists():
        SupplierProfile.objects.create(
            supplier=supplier, company_name=company.company_name,
            credit_code=company.credit_code_17 + credit_code_check_character(company.credit_code_17),
            legal_person_name=company.legal_person_name, contact_name=company.contact_name,
            contact_phone=company.contact_phone, business_scope=company.business_scope)
    profile = SupplierProfile.objects.get(supplier=supplier)
    if profile.legal_person_real_name_id is None:
        number = company.legal_person_id_17 + check_character(company.legal_person_id_17)
        now = timezone.now()
        real_name, _ = RealName.objects.update_or_create(user_id=supplier.owner_id, defaults={
            "status": RealNameStatus.VERIFIED, "name": company.legal_person_name, "id_number": number,
            "id_number_index": identity_index_of(number), "identity_slot": 1, "provider": "demo",
            "verified_at": now, "rejection_code": ""})
        profile.legal_person_real_name, profile.legal_person_verified_at = real_name, now
        profile.save(update_fields=["legal_person_real_name", "legal_person_verified_at", "updated_at"])
    kinds = set(supplier.documents.values_list("kind", flat=True))
    for kind, name, data in ((DocumentKind.BUSINESS_LICENCE, "营业执照（演示）.pdf", PLACEHOLDER_PDF),
                             (DocumentKind.INDUSTRY_AUTHORISATION, "行业授权（演示）.png", PLACEHOLDER_PNG)):
        if kind not in kinds:
            supplier_document_upload(supplier=supplier, kind=kind, upload=SimpleUploadedFile(name, data))
    AgreementAcceptance.objects.get_or_create(supplier=supplier, agreement=agreement,
                                              defaults={"version": agreement.version})
    missing = onboarding_missing(supplier=supplier)
    if missing:  # the onboarding rules asked for more since this was written: the demo must follow them
        raise RuntimeError(f"demo supplier {supplier.name} still lacks {missing}")
