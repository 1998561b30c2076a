"""No plaintext personal data or secrets in the raw database or the logs after the flows that handle them.

Representative flows run with canary values — phone login (API, console SMS), registering and failing to log in
with a phone number, real-name verification (accepted and refused), a payment PIN (right and wrong), card keys
bought through the API, a direct top-up to a phone number, supplier onboarding (legal person, contact, ID
number), a reseller application with a phone as contact, supplier and reseller withdrawals to a bank account (the
holder's name, 户名, asked for in the console, shown there, paid by staff on the page that shows it in full) — while
every logger writes at DEBUG into a handler with the project's mask; then the raw scan (kameng.core.plaintext_scan)
must find none of them, nor anything shaped like a phone, an ID number or a canary card secret. On SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from kameng.accounts.paypin import payment_pin_set
from kameng.accounts.services import realname_verify
from kameng.core.errors import ApplicationError
from kameng.core.logging import MaskSecretsFilter
from kameng.core.management.commands.plaintext_scan import stored_needles
from kameng.core.plaintext_scan import (
    CANARY_PREFIX,
    KIND_CARD_SECRET,
    KIND_ID_NUMBER,
    KIND_PHONE,
    KIND_PIN,
    KIND_REAL_NAME,
    Needle,
    Scanner,
    database_scan,
    id_number_valid,
)
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.resellers.services import reseller_apply
from kameng.suppliers.onboarding import supplier_legal_person_verify
from tests.accounts.ids import id_number
from tests.factories import ProductFactory, SkuFactory, UserFactory, fund_wallet
from tests.suppliers.onboarding_helpers import draft_supplier, private_documents, profile_save
from tests.suppliers.topup_support import Upstreams, topup_sku, upstreams

__all__ = ["private_documents", "upstreams"]

PHONES = {"login": "13927364851", "register": "15861239047", "wrong_login": "17712983460", "topup": "18645201937",
          "supplier": "13566120984", "reseller": "18811904736"}
NAMES = {"buyer": "慕容思远", "refused": "欧阳明月", "legal": "司马长风", "contact": "诸葛青云",
         "supplier_holder": "东方既白", "reseller_holder": "令狐冲霄"}
BANK_ACCOUNT = "6222020200198765432"
IDS = {"buyer": id_number(born="19900307", sequence="123"), "refused": id_number(born="19880612", sequence="999"),
       "legal": id_number(born="19750101", sequence="456")}
PIN = "730914"
CARD_SECRETS = [f"{CANARY_PREFIX}-{index:04d}-QWER-7788" for index in range(4)]


def planted() -> list[Needle]:
    return ([Needle(KIND_PHONE, phone) for phone in PHONES.values()]
            + [Needle(KIND_REAL_NAME, name) for name in NAMES.values()]
            + [Needle(KIND_ID_NUMBER, number) for number in IDS.values()]
            + [Needle(KIND_PIN, PIN)] + [Needle(KIND_CARD_SECRET, secret) for secret in CARD_SECRETS])


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every record of every logger at DEBUG, through the mask the project's handlers carry."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(MaskSecretsFilter())
    root = logging.getLogger()
    loggers = [root] + [logger for logger in logging.Logger.manager.loggerDict.values()
                        if isinstance(logger, logging.Logger)]
    levels = {logger: logger.level for logger in loggers}
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    # Loggers that do not propagate (django.server) write through handlers of their own: capture them too.
    extra = [logger for logger in loggers if not logger.propagate]
    root.addHandler(handler)
    for logger in extra:
        logger.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for logger in extra:
            logger.removeHandler(handler)
        for logger, level in levels.items():
            logger.setLevel(level)


def _sms_code(logs: io.StringIO, phone: str) -> str:
    masked = phone[:3] + "****" + phone[-4:]
    found = re.findall(r"短信验证码 (\d{6}) 已发送至 " + re.escape(masked), logs.getvalue())
    assert found, "the console SMS backend logs the code, the number masked"
    return found[-1]


def _flows(logs: io.StringIO, upstreams: Upstreams, capture: Callable[..., Any]) -> None:
    # Phone login through the API, with the console SMS backend (the code read from the log).
    client = Client(HTTP_X_DEVICE_ID="scan-device-1")
    sent = client.post("/api/v1/account/phone/code", {"phone": PHONES["login"]}, content_type="application/json")
    assert sent.status_code == 200, sent.content
    code = _sms_code(logs, PHONES["login"])
    logged_in = client.post("/api/v1/account/phone/login", {"phone": PHONES["login"], "code": code},
                            content_type="application/json")
    assert logged_in.status_code == 200, logged_in.content
    wrong = client.post("/api/v1/account/phone/login", {"phone": PHONES["wrong_login"], "code": "000000"},
                        content_type="application/json")
    assert wrong.status_code >= 400
    # Real-name verification through the API (the local identity backend): accepted, then refused for another.
    verified = client.post("/api/v1/account/realname", {"name": NAMES["buyer"], "id_number": IDS["buyer"]},
                           content_type="application/json")
    assert verified.status_code == 200, verified.content
    with pytest.raises(ApplicationError):
        realname_verify(user_id=UserFactory.create().pk, name=NAMES["refused"], id_number=IDS["refused"])
    # Registering with a phone number, then a wrong password typed with it and with an unknown one.
    web = Client()
    registered = web.post("/register/", {"login": PHONES["register"], "password": "Canary-pass-2026",
                                         "password_again": "Canary-pass-2026"})
    assert registered.status_code == 302, registered.content
    for login in (PHONES["register"], PHONES["wrong_login"]):
        refused = Client().post("/login/", {"username": login, "password": "not-the-password"})
        assert refused.status_code == 400
    # Card keys bought through the API with a payment PIN (right, then wrong).
    buyer = UserFactory.create()
    buyer.set_password("Canary-pass-2026")
    buyer.save()
    fund_wallet(buyer, "500.00")
    payment_pin_set(user_id=buyer.pk, new_pin=PIN, password="Canary-pass-2026")
    buyer.refresh_from_db()
    buyer.password_free_limit = Decimal("0.00")
    buyer.save(update_fields=["password_free_limit"])
    sku = SkuFactory.create(product=ProductFactory.create(), price=Decimal("10.00"))
    from kameng.inventory.imports import card_key_batch_create, card_keys_import

    card_keys_import(batch=card_key_batch_create(sku_id=sku.pk, created_by_id=None, source_name="scan"),
                     text="\n".join(CARD_SECRETS))
    shop = Client()
    shop.force_login(buyer)
    bought = shop.post("/api/v1/shop/orders", {"sku_id": sku.pk, "quantity": 2, "pay_with_wallet": True,
                                               "request_id": "scan-1", "pin": PIN}, content_type="application/json")
    assert bought.status_code == 201, bought.content
    assert set(bought.json()["secrets"]) <= set(CARD_SECRETS)
    refused_pin = shop.post("/api/v1/shop/orders", {"sku_id": sku.pk, "quantity": 1, "pay_with_wallet": True,
                                                    "request_id": "scan-2", "pin": "000000"},
                            content_type="application/json")
    assert refused_pin.status_code == 400
    # A direct top-up to a phone number, fulfilled by a supplier.
    top_sku = topup_sku("50.00")
    upstreams.offer("甲", top_sku, "48.00")
    with capture(execute=True):
        purchase_create(buyer_id=buyer.pk, sku_id=top_sku.pk, quantity=1, request_id="scan-topup",
                        payment=PaymentChoice(PayBy.WALLET, pin=PIN), buyer_input={"phone": PHONES["topup"]})
    # Supplier onboarding: legal person, contact, ID number.
    supplier = draft_supplier()
    profile_save(supplier, legal_person_name=NAMES["legal"], contact_name=NAMES["contact"],
                 contact_phone=PHONES["supplier"])
    supplier_legal_person_verify(supplier=supplier, id_number=IDS["legal"])
    # A reseller application whose contact is a phone number.
    reseller_apply(user_id=UserFactory.create().pk, contact=PHONES["reseller"], note="抖音直播间")
    _withdrawal_flows()


def _withdrawal_flows() -> None:
    """Bank withdrawals of a supplier and of a reseller, asked in their consoles, shown there, paid by staff."""
    from kameng.ledger import recipes
    from kameng.ledger.services import journal_draft_post
    from kameng.resellers.models import Reseller, ResellerStatus, ResellerWithdrawal
    from kameng.suppliers.models import SupplierWithdrawal
    from tests.factories import SupplierFactory
    from tests.suppliers.money_support import credit_payable

    staff = Client()
    staff.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    supplier = SupplierFactory.create()
    credit_payable(supplier, "500.00", reference="scan-supplier")
    console = Client()
    console.force_login(supplier.owner)
    asked = console.post("/supplier/withdrawals/", {
        "amount": "300.00", "bank_name": "工商银行", "account_name": NAMES["supplier_holder"],
        "account_number": BANK_ACCOUNT, "request_id": "scan-w1"})
    assert asked.status_code == 302, asked.content
    assert NAMES["supplier_holder"] not in console.get(asked["Location"]).content.decode()
    supplied = SupplierWithdrawal.objects.get(request_id="scan-w1")
    pay_url = f"/admin/suppliers/supplierwithdrawal/{supplied.pk}/pay/"
    assert NAMES["supplier_holder"] in staff.get(pay_url).content.decode()  # the payer needs the name in full
    assert staff.post(pay_url, {"transfer_reference": "ICBC-SCAN-1", "confirm": "on"}).status_code == 302

    user = UserFactory.create()
    Reseller.objects.create(user=user, status=ResellerStatus.ACTIVE)
    journal_draft_post(draft=recipes.reseller_earning_pending(reference="scan-commission", memo="test",
                                                              amount=Decimal("300.00"), is_margin=False))
    journal_draft_post(draft=recipes.commission_released(reference="scan-commission", memo="test", owner_id=user.pk,
                                                         amount=Decimal("300.00")))
    console = Client()
    console.force_login(user)
    asked = console.post("/reseller/withdrawals/", {
        "amount": "200.00", "bank_name": "建设银行", "account_name": NAMES["reseller_holder"],
        "account_number": BANK_ACCOUNT, "request_id": "scan-w2"})
    assert asked.status_code == 302, asked.content
    assert NAMES["reseller_holder"] not in console.get(asked["Location"]).content.decode()
    resold = ResellerWithdrawal.objects.get(request_id="scan-w2")
    pay_url = f"/admin/resellers/resellerwithdrawal/{resold.pk}/pay/"
    assert NAMES["reseller_holder"] in staff.get(pay_url).content.decode()
    assert staff.post(pay_url, {"transfer_reference": "CCB-SCAN-1", "confirm": "on"}).status_code == 302


def _scan(logs: io.StringIO) -> list[str]:
    scanner = Scanner(planted() + stored_needles())
    findings = [str(finding) for finding in database_scan(scanner)]
    findings += [f"log:{number}: {kind}: {excerpt}"
                 for number, line in enumerate(logs.getvalue().splitlines(), start=1)
                 for kind, excerpt in scanner.text(line)]
    return findings


def _run(logs: io.StringIO, upstreams: Upstreams, capture: Callable[..., Any]) -> None:
    assert all(id_number_valid(number) for number in IDS.values())
    _flows(logs, upstreams, capture)
    assert logs.getvalue(), "the flows logged something"
    assert _scan(logs) == []


@pytest.mark.django_db(transaction=False)
def test_no_plaintext_after_the_flows(captured_logs: io.StringIO, upstreams: Upstreams,
                                      django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    _run(captured_logs, upstreams, django_capture_on_commit_callbacks)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=False)
def test_no_plaintext_after_the_flows_on_postgresql(captured_logs: io.StringIO, upstreams: Upstreams,
                                                    django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://…)")
    _run(captured_logs, upstreams, django_capture_on_commit_callbacks)


@pytest.mark.django_db
def test_the_scan_finds_what_is_planted_in_clear(captured_logs: io.StringIO) -> None:
    """The scan is not blind: a phone in a plaintext column, a canary secret and a name in a log are found."""
    from kameng.catalog.models import Category

    Category.objects.create(name=f"客服 {PHONES['login']}", slug="leak")
    # Neither is a shape the log mask knows: a key without dashes, a name in free text.
    logging.getLogger("kameng.test").debug("卡密 %s 发给 %s", f"{CANARY_PREFIX}9999 abcd", "慕容思远")
    findings = _scan(captured_logs)
    assert any(finding.startswith("db:catalog_category.name") and "phone" in finding for finding in findings)
    assert any(finding.startswith("log:") and "card secret" in finding for finding in findings)
    assert any(finding.startswith("log:") and "real name" in finding for finding in findings)
    assert not any(PHONES["login"] in finding or f"{CANARY_PREFIX}9999" in finding for finding in findings), findings


@pytest.mark.django_db
def test_the_command_exits_non_zero_on_a_finding() -> None:
    from django.core.management.base import CommandError

    out = io.StringIO()
    call_command("plaintext_scan", stdout=out)
    assert "no plaintext" in out.getvalue()
    from kameng.catalog.models import Category

    Category.objects.create(name=f"客服 {PHONES['login']}", slug="leak")
    with pytest.raises(CommandError, match="1 plaintext finding"):
        call_command("plaintext_scan", "--value", f"phone={PHONES['login']}", stdout=io.StringIO())
