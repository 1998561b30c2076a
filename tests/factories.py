"""factory_boy factories for the domain models, plus helpers that fund wallets and stock SKUs."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import factory
import pytest

from kameng.accounts.models import User
from kameng.catalog.models import Category, Product, Sku
from kameng.inventory import services as inventory_services
from kameng.inventory.imports import card_key_batch_create, card_keys_import
from kameng.ledger.models import AccountKind, JournalKind
from kameng.ledger.services import credit, debit, journal_post, system_account_id, wallet_account_id
from kameng.suppliers.models import Supplier, SupplierOffer, SupplierStatus


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"buyer{n}")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-9")

    @factory.post_generation
    def saved(obj: User, create: bool, extracted: object, **kwargs: object) -> None:  # noqa: N805 - factory_boy passes the instance
        if create:
            obj.save()


class CategoryFactory(factory.django.DjangoModelFactory[Category]):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"游戏点卡{n}")
    slug = factory.Sequence(lambda n: f"cards-{n}")


class ProductFactory(factory.django.DjangoModelFactory[Product]):
    class Meta:
        model = Product

    category = factory.SubFactory(CategoryFactory)
    name = factory.Sequence(lambda n: f"测试点卡{n}")
    max_quantity = 100


class SkuFactory(factory.django.DjangoModelFactory[Sku]):
    class Meta:
        model = Sku

    product = factory.SubFactory(ProductFactory)
    name = "10 元"
    face_value = Decimal("10.00")
    price = Decimal("9.50")


class SupplierFactory(factory.django.DjangoModelFactory[Supplier]):
    """An approved supplier (供货商) with its own login, stock kept by hand unless said otherwise."""

    class Meta:
        model = Supplier

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"供货商{n}")
    status = SupplierStatus.APPROVED


class SupplierOfferFactory(factory.django.DjangoModelFactory[SupplierOffer]):
    class Meta:
        model = SupplierOffer

    supplier = factory.SubFactory(SupplierFactory)
    sku = factory.SubFactory(SkuFactory)
    price = Decimal("9.00")
    upstream_product_id = factory.Sequence(lambda n: f"P{10000 + n}")


def fund_wallet(user: User, amount: Decimal | str, reference: str | None = None) -> None:
    """Credit the user's wallet as a gateway top-up would (a balanced journal)."""
    amount = Decimal(amount)
    journal_post(
        kind=JournalKind.ADJUSTMENT, reference=reference or f"test-fund-{user.pk}-{amount}",
        legs=[debit(system_account_id(kind=AccountKind.GATEWAY_CLEARING, suffix="test"), amount),
              credit(wallet_account_id(user_id=user.pk), amount)],
    )


def stock_sku(sku: Sku, count: int, prefix: str | None = None) -> list[str]:
    """Import `count` fresh card keys for the SKU; returns their plaintext secrets."""
    prefix = prefix or f"KEY-{sku.pk}"
    secrets = [f"{prefix}-{index:06d}" for index in range(count)]
    batch = card_key_batch_create(sku_id=sku.pk, created_by_id=None, source_name="test")
    card_keys_import(batch=batch, text="\n".join(secrets))
    return secrets


def claim_scan_from(monkeypatch: pytest.MonkeyPatch, *, last: bool = False) -> None:
    """Every claim's scan starts at its source's first available key (with `last`, at its last one, so that a
    claim of more than one key must wrap), not at a random one: a test that counts statements, or follows one
    path of the group commit, must not see a wrap it did not ask for (a wrap adds a claim statement, and a
    message's guard refuses it)."""
    monkeypatch.setattr(inventory_services, "_start", lambda source: source.high if last else source.low)


def manual_sku(price: str = "58.00") -> Sku:
    """A SKU of a product fulfilled by hand (人工发货): nothing in stock, staff deliver each order."""
    from kameng.catalog.models import DeliveryKind

    return SkuFactory.create(product__delivery_kind=DeliveryKind.MANUAL, product__name="代充服务", name="60 元档",
                             price=Decimal(price))


# --- staff 2FA (kameng/accounts/staff_otp.py) ------------------------------------------------------------------------
# A fixed authenticator key for staff in tests: tests/conftest.py gives every staff account logged in by
# Client.force_login a device with it and a verified session; the e2e helpers compute its codes.
STAFF_TOTP_KEY = b"kameng-tests-staff-2".hex()


def staff_totp_code(key_hex: str = STAFF_TOTP_KEY) -> str:
    from kameng.accounts.staff_otp import totp_code_now

    return totp_code_now(key_hex)


def staff_session_verify(client: Any, user: Any) -> None:
    """Make `client`'s session (already logged in as `user`) pass the admin's 2FA, with a fresh step-up."""
    from django_otp import DEVICE_ID_SESSION_KEY

    from kameng.accounts.staff_otp import REAUTH_SESSION_KEY, totp_device_confirmed, totp_device_seed

    device = totp_device_confirmed(user) or totp_device_seed(user=user, key_hex=STAFF_TOTP_KEY)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[REAUTH_SESSION_KEY] = int(time.time())
    session.save()
