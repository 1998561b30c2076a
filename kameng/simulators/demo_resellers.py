"""The demo's resellers (代理), for `make demo` (seed_demo) — never for production.

Seeds the three tiers (普通代理, 高级代理, 总代理), a reseller `reseller-demo` at 高级代理 with ¥100,000 in its wallet
(one balanced ADJUSTMENT journal, like the demo buyers' funding), its sub-site row (slug "demo", served at
/s/demo/ by the sub-site routing, a 10 % markup over the reseller's cost), an Open API key with fixed demo values
(printed at start-up as KAMENG_DEMO_OPENAPI_KEY / KAMENG_DEMO_OPENAPI_SECRET for examples/openapi_client.py), and
tops one card-key SKU up to 1,000 keys (ten times --keys-per-sku) so that batch orders can be tried. Re-running
only adds what is missing.
"""

from __future__ import annotations

import secrets
import string
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction

from kameng.accounts.models import User
from kameng.catalog.models import Sku
from kameng.inventory.imports import card_key_batch_create, card_keys_import
from kameng.inventory.models import CardKey
from kameng.ledger import recipes
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.services import journal_draft_post
from kameng.resellers.models import ApiKey, MarkupKind, Reseller, ResellerStatus, ResellerTier, SubSite
from kameng.resellers.subsite_cache import subsites_changed

RESELLER_USERNAME = "reseller-demo"
RESELLER_FUNDING = Decimal("100000.00")
# (name, rank, default discount off retail, sub-site markup cap)
TIERS = (("普通代理", 1, Decimal("5.00")), ("高级代理", 2, Decimal("10.00")), ("总代理", 3, Decimal("15.00")))
RESELLER_TIER = "高级代理"
SUBSITE_SLUG = "demo"
# The sub-site's default markup over the reseller's cost (高级代理: 10 % off retail), so a visitor of /s/demo/ sees
# prices above what the reseller pays: cost ¥9.00, sub-site ¥9.90 for a ¥10.00 SKU.
SUBSITE_MARKUP_PERCENT = Decimal("10.00")
# Demo values only, printed on purpose: anyone who reads this file can sign as the demo reseller.
DEMO_KEY_ID = "kk_demo_reseller_2026"
DEMO_KEY_SECRET = "kameng-demo-openapi-secret-2026-not-for-production"  # noqa: S105
# The card-key SKU kept at ten times the other SKUs' stock — 1,000 keys by default (product, SKU, key prefix).
BULK_SKU = ("腾讯 Q 币卡", "10 元", "QB")
BULK_FACTOR = 10


def demo_resellers_ensure(*, password: str, keys_per_sku: int = 100) -> dict[str, Any]:
    """Tiers, the demo reseller with its wallet, sub-site and API key; the bulk SKU's stock. Returns what the banner
    shows: {"logins": [...], "openapi": {"key", "secret", "sku_id"}}."""
    with transaction.atomic():
        tiers = {name: ResellerTier.objects.get_or_create(name=name, defaults={
            "rank": rank, "discount_percent": discount})[0] for name, rank, discount in TIERS}
        user, created = User.objects.get_or_create(username=RESELLER_USERNAME)
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        reseller, _ = Reseller.objects.get_or_create(user=user, defaults={
            "tier": tiers[RESELLER_TIER], "status": ResellerStatus.ACTIVE, "application_note": "演示代理"})
        reference = f"demo-seed-wallet:{RESELLER_USERNAME}"
        if not Journal.objects.filter(kind=JournalKind.ADJUSTMENT, reference=reference).exists():
            journal_draft_post(draft=recipes.wallet_topup_credit(
                payment_number=reference, memo="演示数据：为演示代理充值", channel_code="demo-seed",
                user_id=user.pk, amount=RESELLER_FUNDING, kind=JournalKind.ADJUSTMENT))
        _subsite_ensure(reseller)
        ApiKey.objects.get_or_create(key_id=DEMO_KEY_ID, defaults={
            "reseller": reseller, "secret": DEMO_KEY_SECRET, "name": "演示密钥"})
        # the banner prints this key: one revoked while trying the console works again after a restart
        ApiKey.objects.filter(key_id=DEMO_KEY_ID, revoked_at__isnull=False).update(revoked_at=None)
    sku_id = _bulk_stock_ensure(keys=keys_per_sku * BULK_FACTOR)
    return {"logins": [{"role": f"reseller, {RESELLER_TIER}, ¥{RESELLER_FUNDING:,}", "username": RESELLER_USERNAME,
                        "password": password}],
            "openapi": {"key": DEMO_KEY_ID, "secret": DEMO_KEY_SECRET, "sku_id": sku_id}}


def _subsite_ensure(reseller: Reseller) -> None:
    """The sub-site at /s/demo/, selling at SUBSITE_MARKUP_PERCENT over the reseller's cost. A sub-site an earlier
    seed left at 0 % and nobody has edited since (its row never saved again) gets the markup too."""
    subsite, created = SubSite.objects.get_or_create(reseller=reseller, defaults={
        "slug": SUBSITE_SLUG, "title": "演示分站", "notice": "这是演示代理的分站，价格为代理成本价加 10 %。",
        "markup_kind": MarkupKind.PERCENT, "markup_value": SUBSITE_MARKUP_PERCENT})
    never_edited = subsite.updated_at - subsite.created_at < timedelta(seconds=1)
    if not created and never_edited and subsite.markup_value == 0 and not subsite.prices.exists():
        SubSite.objects.filter(pk=subsite.pk).update(markup_kind=MarkupKind.PERCENT,
                                                     markup_value=SUBSITE_MARKUP_PERCENT)
        created = True
    if created:
        transaction.on_commit(subsites_changed)


def _bulk_stock_ensure(*, keys: int) -> int | None:
    product_name, sku_name, prefix = BULK_SKU
    sku = Sku.objects.filter(product__name=product_name, name=sku_name).first()
    if sku is None:
        return None
    missing = keys - CardKey.objects.filter(sku=sku).count()
    if missing > 0:
        batch = card_key_batch_create(sku_id=sku.pk, created_by_id=None, source_name="seed_demo")
        card_keys_import(batch=batch, text="\n".join(_random_secret(prefix) for _ in range(missing)))
    return sku.pk


def _random_secret(prefix: str) -> str:
    number = "".join(secrets.choice(string.digits) for _ in range(16))
    code = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(10))
    return f"{prefix}{number} {code}"
