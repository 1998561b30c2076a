"""Attribution: every user's invite code; `?aff=<code>` leaves a signed cookie for 30 days; registering by password,
by SMS code (page and JSON) records the code's owner as inviter (source link); registering on a sub-site records
its owner (source registration) unless a link says otherwise; expired, forged or unknown codes record nothing."""

from __future__ import annotations

import json
import time
from unittest import mock

import pytest
from django.core import signing
from django.test import Client, RequestFactory
from django.urls import reverse

from kameng.accounts.models import User
from kameng.resellers.attribution import AFF_COOKIE, AFF_COOKIE_SALT, referral_after_registration
from kameng.resellers.models import InviteCode, Referral, ReferralSource
from kameng.resellers.referrals import INVITE_CODE_RE, invite_code_of
from tests.accounts.phone_support import RecordingSender, recording_sender_install
from tests.factories import UserFactory
from tests.resellers.earnings_support import reseller, subsite_of

pytestmark = pytest.mark.django_db
PHONE = "13812345678"
PASSWORD = "correct-horse-9"


@pytest.fixture
def sender(monkeypatch: pytest.MonkeyPatch) -> RecordingSender:
    return recording_sender_install(monkeypatch)


def _register(client: Client, login: str = "newbie_01") -> User:
    response = client.post(reverse("web:register"), {"login": login, "password": PASSWORD,
                                                     "password_again": PASSWORD})
    assert response.status_code == 302
    return User.objects.get(username=login)


def test_an_invite_code_is_short_random_and_stable() -> None:
    first, second = UserFactory.create(), UserFactory.create()

    code = invite_code_of(user_id=first.pk)

    assert INVITE_CODE_RE.match(code)
    assert invite_code_of(user_id=first.pk) == code
    assert invite_code_of(user_id=second.pk) != code
    assert InviteCode.objects.count() == 2


def test_a_link_sets_a_signed_cookie_for_thirty_days(client: Client) -> None:
    code = invite_code_of(user_id=reseller().pk)

    response = client.get("/", {"aff": code.lower()})

    cookie = response.cookies[AFF_COOKIE]
    assert cookie["max-age"] == 30 * 24 * 3600
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert cookie.value != code  # signed, not the bare code
    assert client.get("/").cookies.get(AFF_COOKIE) is None  # written only when a link is followed
    assert client.get("/", {"aff": "not a code!"}).cookies.get(AFF_COOKIE) is None


def test_registering_after_a_link_records_the_inviter(client: Client) -> None:
    inviter = reseller()
    client.get("/products/0/", {"aff": invite_code_of(user_id=inviter.pk)})  # any storefront address, even a 404

    user = _register(client)

    referral = Referral.objects.get(user=user)
    assert (referral.inviter_id, referral.source) == (inviter.pk, ReferralSource.LINK)


def _cookie_signed_days_ago(code: str, days: float) -> str:
    with mock.patch("django.core.signing.time.time", return_value=time.time() - days * 24 * 3600):
        return signing.get_cookie_signer(salt=AFF_COOKIE + AFF_COOKIE_SALT).sign(code)


def test_a_cookie_older_than_thirty_days_counts_for_nothing(client: Client) -> None:
    inviter = reseller()
    code = invite_code_of(user_id=inviter.pk)
    client.cookies[AFF_COOKIE] = _cookie_signed_days_ago(code, 29.9)
    recent = _register(client, "recent_01")
    client.logout()
    client.cookies[AFF_COOKIE] = _cookie_signed_days_ago(code, 30.1)

    expired = _register(client, "expired_01")

    assert Referral.objects.get(user=recent).inviter_id == inviter.pk
    assert not Referral.objects.filter(user=expired).exists()


def test_a_forged_or_unknown_code_records_nothing(client: Client) -> None:
    client.cookies[AFF_COOKIE] = invite_code_of(user_id=reseller().pk)  # unsigned
    forged = _register(client, "forged_01")
    client.logout()
    client.cookies.clear()
    client.get("/", {"aff": "ABCDEFGH"})  # well formed, nobody's
    unknown = _register(client, "unknown_01")

    assert not Referral.objects.filter(user__in=[forged, unknown]).exists()


def test_an_sms_registration_records_the_inviter(client: Client, sender: RecordingSender) -> None:
    inviter = reseller()
    client.get("/", {"aff": invite_code_of(user_id=inviter.pk)})
    client.post(reverse("web:login_sms_send"), {"phone": PHONE})

    logged = client.post(reverse("web:login_sms"), {"phone": PHONE, "code": sender.last_code})

    assert logged.status_code == 302
    assert Referral.objects.get().inviter_id == inviter.pk


def test_an_sms_login_of_an_existing_account_changes_nothing(client: Client, sender: RecordingSender) -> None:
    from kameng.accounts.services import user_register

    user = user_register(login=PHONE, password=PASSWORD)
    client.get("/", {"aff": invite_code_of(user_id=reseller().pk)})
    client.post(reverse("web:login_sms_send"), {"phone": PHONE})

    client.post(reverse("web:login_sms"), {"phone": PHONE, "code": sender.last_code})

    assert not Referral.objects.filter(user=user).exists()


def test_the_json_phone_registration_records_the_inviter(client: Client, sender: RecordingSender) -> None:
    inviter = reseller()
    client.get("/", {"aff": invite_code_of(user_id=inviter.pk)})
    client.post("/api/v1/account/phone/code", json.dumps({"phone": PHONE}), content_type="application/json")

    response = client.post("/api/v1/account/phone/login", json.dumps({"phone": PHONE, "code": sender.last_code}),
                           content_type="application/json")

    assert response.status_code == 200
    assert response.json()["created"] is True
    assert Referral.objects.get().inviter_id == inviter.pk


def test_registering_on_a_sub_site_makes_its_owner_the_inviter_unless_a_link_says_otherwise() -> None:
    owner, linker = reseller(), reseller()
    subsite = subsite_of(owner)
    factory = RequestFactory()
    plain = factory.get("/")
    plain.subsite = subsite  # type: ignore[attr-defined]
    with_link = factory.get("/", {"aff": invite_code_of(user_id=linker.pk)})
    with_link.subsite = subsite  # type: ignore[attr-defined]
    first, second = UserFactory.create(), UserFactory.create()

    referral_after_registration(plain, user_id=first.pk)
    referral_after_registration(with_link, user_id=second.pk)
    referral_after_registration(with_link, user_id=first.pk)  # a second call changes nothing

    assert [(row.user_id, row.inviter_id, row.source) for row in Referral.objects.order_by("pk")] == [
        (first.pk, owner.pk, ReferralSource.REGISTRATION), (second.pk, linker.pk, ReferralSource.LINK)]
