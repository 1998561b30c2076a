"""`manage.py seed_demo`: a small shop to try kameng on — run it any number of times, it only adds what is missing.

Seeds categories, card-key products with SKUs and encrypted stock (through the normal import path, so every key is
encrypted and fingerprinted), a staff superuser and a buyer with a funded wallet (one balanced journal), the
simulated 易支付 merchant with the payment channel that pays through it, and two suppliers reached through the
supplier simulator (Fulu protocol) with the direct top-up products (话费, a game) they compete on (demo_suppliers).
Membership: the demo buyer at VIP2, a second buyer at VIP4 (their spend seeded, no orders behind it), a few member
prices and a floor price to see them work.
Nothing here is for production: the passwords are printed on purpose.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from kameng.accounts.models import User
from kameng.accounts.staff_otp import (
    staff_has_device,
    totp_device_confirmed,
    totp_device_seed,
    totp_secret_base32,
)
from kameng.catalog.models import Category, DeliveryKind, Product, ProductStatus, Sku
from kameng.inventory.imports import card_key_batch_create, card_keys_import
from kameng.inventory.models import CardKey
from kameng.ledger import recipes
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.services import journal_draft_post
from kameng.membership.models import MemberLevel, MemberPrice, Membership
from kameng.membership.services import member_prices_changed, membership_spend_seed

DEMO_PASSWORD = "kameng-demo-2026"  # noqa: S105 - a demo login, printed on purpose
ADMIN_USERNAME = "admin"
# The demo admin's 2FA authenticator key (kameng/accounts/staff_otp.py): fixed, so that the start-up text can say
# how to get the code — the base32 secret for an authenticator app, or `python -m kameng.demo totp`.
DEMO_ADMIN_TOTP_KEY = b"kameng-demo-admin-2f".hex()
BUYER_USERNAME = "demo"
BUYER_FUNDING = Decimal("1000.00")
VIP_BUYER_USERNAME = "vip4"
# (username, seeded spend): VIP2 from 500, VIP4 from 5,000 with the default levels.
MEMBER_SPEND = ((BUYER_USERNAME, Decimal("800.00")), (VIP_BUYER_USERNAME, Decimal("6000.00")))
KEYS_PER_SKU = 100


@dataclass(frozen=True)
class SkuSeed:
    name: str
    face_value: str
    price: str


@dataclass(frozen=True)
class ProductSeed:
    category_slug: str
    name: str
    description: str
    key_prefix: str
    skus: tuple[SkuSeed, ...]
    delivery_kind: str = DeliveryKind.CARD_KEY


CATEGORIES = (
    ("game-cards", "游戏点卡", 10),
    ("video-memberships", "视频会员", 20),
    ("phone-cards", "话费卡", 30),
)

PRODUCTS = (
    ProductSeed(
        "game-cards", "腾讯 Q 币卡",
        "腾讯官方 Q 币充值卡，自动发货。登录 pay.qq.com 选择「Q 币卡充值」输入卡号和密码即可到账。",
        "QB", (SkuSeed("10 元", "10", "9.80"), SkuSeed("30 元", "30", "29.40"), SkuSeed("100 元", "100", "98.00")),
    ),
    ProductSeed(
        "game-cards", "网易一卡通",
        "网易一卡通点卡，可充值梦幻西游、大话西游等网易游戏。卡密即买即发，请在有效期内使用。",
        "WY", (SkuSeed("15 元", "15", "14.70"), SkuSeed("30 元", "30", "29.40"), SkuSeed("50 元", "50", "49.00")),
    ),
    ProductSeed(
        "game-cards", "Steam 钱包充值卡（国区）",
        "Steam 国区钱包兑换码，在客户端「兑换 Steam 钱包充值码」中使用。",
        "ST", (SkuSeed("50 元", "50", "49.50"), SkuSeed("100 元", "100", "98.50")),
    ),
    ProductSeed(
        "video-memberships", "爱奇艺黄金会员",
        "爱奇艺黄金 VIP 激活码，登录爱奇艺后在「激活码兑换」页面输入即可开通。",
        "AQY", (SkuSeed("月卡", "", "19.80"), SkuSeed("季卡", "", "54.00"), SkuSeed("年卡", "", "198.00")),
    ),
    ProductSeed(
        "video-memberships", "腾讯视频 VIP 会员",
        "腾讯视频 VIP 兑换码，支持电脑、手机、平板观看（不含电视端）。",
        "TXV", (SkuSeed("月卡", "", "20.00"), SkuSeed("季卡", "", "58.00"), SkuSeed("年卡", "", "218.00")),
    ),
    ProductSeed(
        "phone-cards", "中国移动话费充值卡",
        "中国移动全国通用充值卡，拨打 10086 或在中国移动 App 中输入卡密充值。",
        "YD", (SkuSeed("30 元", "30", "29.70"), SkuSeed("50 元", "50", "49.50"), SkuSeed("100 元", "100", "99.00")),
    ),
    # Fulfilled by hand (人工发货): staff deliver it from the admin with a note the buyer reads on the order page.
    ProductSeed(
        "game-cards", "代充服务",
        "人工代充：下单后客服为您代充到游戏账号，一般 10 分钟内完成；发货说明会显示在订单页。",
        "", (SkuSeed("60 元档", "60", "58.00"), SkuSeed("128 元档", "128", "124.00")),
        delivery_kind=DeliveryKind.MANUAL,
    ),
)


def _random_secret(prefix: str) -> str:
    """A plausible 卡号 + 密码 pair: 16 digits and a 10-character code (uppercase and digits)."""
    number = "".join(secrets.choice(string.digits) for _ in range(16))
    code = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(10))
    return f"{prefix}{number} {code}"


@dataclass
class SeedSummary:
    categories: int = 0
    products: int = 0
    skus: int = 0
    card_keys: int = 0
    card_keys_added: int = 0
    wallet_funded: bool = False
    members: int = 0
    simulator_merchant: str = ""
    suppliers: int = 0


def _seed_catalog(summary: SeedSummary, *, keys_per_sku: int) -> None:
    categories = {}
    for slug, name, sort_order in CATEGORIES:
        categories[slug], _ = Category.objects.get_or_create(
            slug=slug, defaults={"name": name, "sort_order": sort_order})
    for sort_order, seed in enumerate(PRODUCTS):
        product, _ = Product.objects.get_or_create(
            category=categories[seed.category_slug], name=seed.name,
            defaults={"description": seed.description, "delivery_kind": seed.delivery_kind,
                      "status": ProductStatus.ON_SALE, "max_quantity": 20, "sort_order": sort_order},
        )
        for sku_order, sku_seed in enumerate(seed.skus):
            sku, _ = Sku.objects.get_or_create(
                product=product, name=sku_seed.name,
                defaults={"face_value": Decimal(sku_seed.face_value) if sku_seed.face_value else None,
                          "price": Decimal(sku_seed.price), "sort_order": sku_order},
            )
            if seed.delivery_kind != DeliveryKind.CARD_KEY:
                continue  # nothing in stock: staff deliver it
            # Top the SKU up to `keys_per_sku` keys ever imported (sold ones included): a re-run adds none.
            missing = keys_per_sku - CardKey.objects.filter(sku=sku).count()
            if missing > 0:
                batch = card_key_batch_create(sku_id=sku.pk, created_by_id=None, source_name="seed_demo")
                batch = card_keys_import(batch=batch,
                                         text="\n".join(_random_secret(seed.key_prefix) for _ in range(missing)))
                summary.card_keys_added += batch.imported_count
    summary.categories = Category.objects.count()
    summary.products = Product.objects.count()
    summary.skus = Sku.objects.count()
    summary.card_keys = CardKey.objects.count()


def _seed_users(summary: SeedSummary) -> None:
    admin, created = User.objects.get_or_create(username=ADMIN_USERNAME,
                                                defaults={"is_staff": True, "is_superuser": True})
    if created:
        admin.set_password(DEMO_PASSWORD)
        admin.save(update_fields=["password"])
    if not staff_has_device(admin):  # kept as it is once there (an admin who re-enrolled keeps their phone's)
        totp_device_seed(user=admin, key_hex=DEMO_ADMIN_TOTP_KEY)
    buyer, created = User.objects.get_or_create(username=BUYER_USERNAME)
    if created:
        buyer.set_password(DEMO_PASSWORD)
        buyer.save(update_fields=["password"])
    vip, created = User.objects.get_or_create(username=VIP_BUYER_USERNAME)
    if created:
        vip.set_password(DEMO_PASSWORD)
        vip.save(update_fields=["password"])
    for user in (buyer, vip):
        reference = f"demo-seed-wallet:{user.username}"
        if not Journal.objects.filter(kind=JournalKind.ADJUSTMENT, reference=reference).exists():
            journal_draft_post(draft=recipes.wallet_topup_credit(
                payment_number=reference, memo="演示数据：为演示买家充值", channel_code="demo-seed",
                user_id=user.pk, amount=BUYER_FUNDING, kind=JournalKind.ADJUSTMENT))
            summary.wallet_funded = True


def _seed_membership(summary: SeedSummary) -> None:
    """Members at two levels, a SKU member price (VIP2 and up), a category rate (VIP4 and up) and a floor price."""
    for username, spend in MEMBER_SPEND:
        user = User.objects.get(username=username)
        if not Membership.objects.filter(user=user).exists():
            membership_spend_seed(user_id=user.pk, spend=spend)
    levels = {level.rank: level for level in MemberLevel.objects.all()}
    monthly = Sku.objects.filter(product__name="爱奇艺黄金会员", name="月卡").first()
    if 2 in levels and monthly is not None:
        MemberPrice.objects.get_or_create(level=levels[2], sku=monthly, defaults={"price": Decimal("17.80")})
    videos = Category.objects.filter(slug="video-memberships").first()
    if 4 in levels and videos is not None:
        MemberPrice.objects.get_or_create(level=levels[4], category=videos,
                                          defaults={"discount_rate": Decimal("0.900")})
    Sku.objects.filter(product__name="腾讯 Q 币卡", name="100 元", floor_price=None).update(
        floor_price=Decimal("95.00"))
    member_prices_changed()
    summary.members = Membership.objects.count()


def _seed_payment_channels(summary: SeedSummary) -> list[dict[str, str]]:
    """One simulated channel per protocol (epay V1/V2, Alipay page + QR, WeChat Native) and the wallet balance."""
    from kameng.simulators.demo_channels import demo_channels_ensure

    channels = [channel.as_dict() for channel in demo_channels_ensure()]
    summary.simulator_merchant = channels[0]["merchant_id"]
    return channels


def _seed_suppliers(summary: SeedSummary) -> dict[str, Any]:
    """Two suppliers on the supplier simulator, 话费 and game direct top-ups with an offer from each."""
    from kameng.simulators.demo_suppliers import demo_suppliers_ensure

    seeded = demo_suppliers_ensure(password=DEMO_PASSWORD)
    summary.suppliers = len(seeded["suppliers"])
    summary.categories, summary.products, summary.skus = (
        Category.objects.count(), Product.objects.count(), Sku.objects.count())
    return seeded


def _seed_resellers(*, keys_per_sku: int) -> dict[str, Any]:
    """Reseller tiers, the demo reseller (wallet, sub-site row, Open API key) and a SKU with 10 × keys_per_sku keys
    (1,000 by default) for batch orders through the Open API."""
    from kameng.simulators.demo_resellers import demo_resellers_ensure

    return demo_resellers_ensure(password=DEMO_PASSWORD, keys_per_sku=keys_per_sku)


class Command(BaseCommand):
    help = "Seed a demo shop (catalogue, encrypted card keys, admin + buyer, simulated payment channel). Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--keys-per-sku", type=int, default=KEYS_PER_SKU,
                            help=f"card keys to stock per SKU (default {KEYS_PER_SKU})")
        parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.KAMENG_SIMULATORS_ENABLED:
            # The simulators' apps are not even installed then (kameng.settings.base).
            raise CommandError("演示数据的支付通道接在内置的支付模拟器上，但模拟器没有启用："
                               "请设置 KAMENG_SIMULATORS_ENABLED=1（the demo's payment channels use the built-in "
                               "simulators: set KAMENG_SIMULATORS_ENABLED=1; `python -m kameng.demo` does）")
        summary = SeedSummary()
        with transaction.atomic():
            _seed_users(summary)
            channels = _seed_payment_channels(summary)
        # The import works in its own transactions (chunked, with progress), so it runs outside the one above.
        _seed_catalog(summary, keys_per_sku=options["keys_per_sku"])
        with transaction.atomic():
            _seed_membership(summary)
            suppliers = _seed_suppliers(summary)
        # After the catalogue: it tops one SKU up to 1,000 keys.
        resellers = _seed_resellers(keys_per_sku=options["keys_per_sku"])
        admin_device = totp_device_confirmed(User.objects.get(username=ADMIN_USERNAME))
        logins = [{"role": "staff superuser", "username": ADMIN_USERNAME, "password": DEMO_PASSWORD,
                   "totp_secret": totp_secret_base32(admin_device) if admin_device is not None else ""},
                  {"role": "buyer, VIP2", "username": BUYER_USERNAME, "password": DEMO_PASSWORD},
                  {"role": "buyer, VIP4", "username": VIP_BUYER_USERNAME, "password": DEMO_PASSWORD},
                  *({"role": f"supplier {supplier['name']}", "username": supplier["username"],
                     "password": DEMO_PASSWORD} for supplier in suppliers["suppliers"]),
                  *resellers["logins"]]
        if options["json"]:
            self.stdout.write(json.dumps({"summary": summary.__dict__, "logins": logins, "channel": channels[0],
                                          "channels": channels, "suppliers": suppliers["suppliers"],
                                          "supplier_simulator": suppliers["simulator"],
                                          "openapi": resellers["openapi"]}, ensure_ascii=False))
            return
        self.stdout.write(self.style.SUCCESS(
            f"demo data: {summary.categories} categories, {summary.products} products, {summary.skus} SKUs, "
            f"{summary.card_keys} card keys ({summary.card_keys_added} added now)"))
        funded = "funded now" if summary.wallet_funded else "already funded"
        self.stdout.write(f"buyer wallets: ¥{BUYER_FUNDING} each ({funded}); members: {summary.members}")
        for login in logins:
            self.stdout.write(f"login ({login['role']}): {login['username']} / {login['password']}")
            if login.get("totp_secret"):
                self.stdout.write(f"    2FA (两步验证) secret {login['totp_secret']}; current code: "
                                  f"python manage.py staff_totp_code {login['username']}")
        for channel in channels:
            self.stdout.write(f"payment channel {channel['code']} ({channel['name']}): merchant id "
                              f"{channel['merchant_id']}, key {channel['demo_key']}, gateway {channel['gateway_url']}, "
                              f"notify URL {channel['notify_url']}")
        self.stdout.write(f"supplier simulator (Fulu protocol): {suppliers['simulator']['gateway_url']}")
        self.stdout.write(f"KAMENG_DEMO_OPENAPI_KEY={resellers['openapi']['key']}")
        self.stdout.write(f"KAMENG_DEMO_OPENAPI_SECRET={resellers['openapi']['secret']}")
        for supplier in suppliers["suppliers"]:
            self.stdout.write(f"supplier {supplier['name']}: merchant {supplier['app_key']}, "
                              f"callback URL {supplier['notify_url']}")
