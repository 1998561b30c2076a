"""Two demo suppliers wired to the supplier simulator, and the direct top-up products they compete on, for
`make demo` (seed_demo) — never for production.

Each supplier is an approved 供货商 with its own console login, reached through the Fulu connector (config encrypted
at rest) at the simulator's gateway, as one of the simulator's merchants (kameng.simulators.supplier.catalog). Its
offers cost what the simulator charges that merchant, so the two compete SKU by SKU. The app secrets are made on
the first run and kept; re-running only follows a changed simulator URL or SITE_URL. `demo_suppliers_ensure`
returns what the simulator must be started with (its merchants, secrets included) and what the banner shows.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from kameng.accounts.models import User
from kameng.catalog.models import Category, DeliveryKind, Product, ProductStatus, Sku
from kameng.simulators.supplier.catalog import DEMO_MERCHANTS, DEMO_PRICE_OVERRIDES, goods_by_id, price_for
from kameng.suppliers.models import ConnectorKind, OfferStockSource, Supplier, SupplierOffer, SupplierStatus

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
            "description": seed.description, "delivery_kind": DeliveryKind.DIRECT_TOPUP, "topup_form": seed.form,
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
    return {"simulator": {"url": url, "gateway_url": f"{url}/api/getway", "merchants": merchants},
            "suppliers": banner}


def _floor_prices_ensure(skus: list[tuple[Sku, str]]) -> None:
    """A member discount stops at what the dearer supplier costs (the SKU's floor price): otherwise a VIP's price
    is below every offer, routing never sells at a loss, and the order is refunded for want of a supplier."""
    for sku, _ in skus:
        highest = max(SupplierOffer.objects.filter(sku=sku).values_list("price", flat=True))
        if sku.floor_price is None or sku.floor_price < highest:
            Sku.objects.filter(pk=sku.pk).update(floor_price=min(highest, sku.price))
