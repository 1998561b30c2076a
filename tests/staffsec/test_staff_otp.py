"""Staff 2FA at the back office's door: no admin page without a confirmed authenticator and a verified session,
enrolment with a QR code and recovery codes, throttled wrong codes, single-use recovery codes, and the idle
timeout of staff sessions (buyers' sessions untouched)."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from kameng.accounts.models import StaffTOTPDevice, User
from kameng.accounts.staff_middleware import SEEN_SESSION_KEY
from kameng.accounts.staff_otp import recovery_codes_replace, totp_code_now, totp_device_seed
from kameng.audit.models import AuditEntry
from tests.factories import STAFF_TOTP_KEY, UserFactory, staff_session_verify, staff_totp_code

pytestmark = [pytest.mark.django_db, pytest.mark.staff_otp_enforced]
PASSWORD = "correct-horse-9"  # UserFactory's


def _admin_urls() -> list[str]:
    """The admin index and every registered model's list page."""
    return [reverse("admin:index"), *sorted(
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry)]


def _staff_logged_in(client: Client, username: str = "staffer") -> User:
    user = UserFactory.create(username=username, is_staff=True, is_superuser=True)
    response = client.post(reverse("admin:login"), {"username": username, "password": PASSWORD,
                                                    "next": reverse("admin:index")})
    assert response.status_code == 302
    return user


def _code_for_another_step() -> str:
    """A valid code of the test key other than the current one is never accepted; a wrong code for sure."""
    current = staff_totp_code()
    return "000000" if current != "000000" else "111111"


def test_staff_without_an_authenticator_reach_no_admin_page(client: Client) -> None:
    _staff_logged_in(client)
    urls = _admin_urls()
    assert len(urls) > 30

    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"{reverse('staff_otp:enrol')}?next={quote(url, safe='')}", url


def test_staff_with_an_authenticator_but_no_code_yet_are_asked_for_one(client: Client) -> None:
    user = _staff_logged_in(client)
    totp_device_seed(user=user, key_hex=STAFF_TOTP_KEY)

    for url in _admin_urls():
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("staff_otp:verify")), url


def test_a_verified_staff_session_reaches_every_admin_page(client: Client) -> None:
    user = _staff_logged_in(client)
    staff_session_verify(client, user)

    for url in _admin_urls():
        assert client.get(url).status_code == 200, url


def test_buyers_are_sent_to_the_admin_login_as_ever(client: Client) -> None:
    buyer = UserFactory.create()
    client.force_login(buyer)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_enrolment_shows_a_local_qr_code_confirms_and_gives_ten_recovery_codes_once(client: Client) -> None:
    user = _staff_logged_in(client)
    enrol = reverse("staff_otp:enrol") + "?next=/admin/orders/order/"

    page = client.get(enrol).content.decode()

    assert '<svg role="img" aria-label="TOTP QR"' in page
    assert "http" not in page.split('data-testid="totp-qr-box"')[1].split("</div>")[0].replace(
        "http://www.w3.org", "")  # drawn here: no image service
    device = StaffTOTPDevice.objects.get(user=user, confirmed=False)
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page)
    assert secret is not None
    wrong = client.post(enrol, {"code": "12345"})
    assert "6 位数字" in wrong.content.decode()

    response = client.post(enrol, {"code": totp_code_now(device.key), "next": "/admin/orders/order/"})

    body = response.content.decode()
    codes = re.findall(r"<li>([a-z2-7]{5}-[a-z2-7]{5})</li>", body)
    assert len(codes) == 10
    assert 'href="/admin/orders/order/"' in body
    device.refresh_from_db()
    assert device.confirmed
    stored = list(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    assert len(stored) == 10
    assert not {code.replace("-", "") for code in codes} & set(stored)  # kept hashed only
    assert client.get("/admin/orders/order/").status_code == 200
    assert client.get(enrol)["Location"].startswith(reverse("staff_otp:verify"))  # enrolled: no second QR
    assert AuditEntry.objects.filter(action="staff_otp.enrolled", actor=user).count() == 1


def test_log_in_then_the_code_then_the_page_asked_for(client: Client) -> None:
    user = _staff_logged_in(client)
    totp_device_seed(user=user, key_hex=STAFF_TOTP_KEY)
    target = reverse("admin:orders_order_changelist")

    asked = client.get(target)
    verify = asked["Location"]
    response = client.post(verify, {"code": staff_totp_code(), "next": target})

    assert response.status_code == 302
    assert response["Location"] == target
    assert client.get(target).status_code == 200
    assert client.session[DEVICE_ID_SESSION_KEY]


def test_a_foreign_next_is_not_followed(client: Client) -> None:
    user = _staff_logged_in(client)
    totp_device_seed(user=user, key_hex=STAFF_TOTP_KEY)

    response = client.post(reverse("staff_otp:verify"), {"code": staff_totp_code(), "next": "https://evil.example/"})

    assert response["Location"] == reverse("admin:index")


def test_wrong_codes_are_throttled_even_before_a_right_one(client: Client) -> None:
    user = _staff_logged_in(client)
    device = totp_device_seed(user=user, key_hex=STAFF_TOTP_KEY)
    verify = reverse("staff_otp:verify")

    first = client.post(verify, {"code": _code_for_another_step()})
    assert "验证码错误" in first.content.decode()
    right_too_soon = client.post(verify, {"code": staff_totp_code()})

    assert right_too_soon.status_code == 200
    assert "错误次数过多" in right_too_soon.content.decode()
    assert DEVICE_ID_SESSION_KEY not in client.session
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    # Once the wait is over the right code is taken.
    StaffTOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=timezone.now() - timedelta(seconds=10))
    assert client.post(verify, {"code": staff_totp_code()}).status_code == 302
    assert AuditEntry.objects.filter(action="staff_otp.failed", actor=user).count() == 1
    assert AuditEntry.objects.filter(action="staff_otp.throttled", actor=user).count() == 1


def test_a_recovery_code_works_once(client: Client) -> None:
    user = _staff_logged_in(client)
    totp_device_seed(user=user, key_hex=STAFF_TOTP_KEY)
    codes = recovery_codes_replace(user=user)
    verify = reverse("staff_otp:verify")

    assert client.post(verify, {"code": codes[3].upper()}).status_code == 302  # as typed from paper
    assert client.get(reverse("admin:index")).status_code == 200

    other = Client()
    _staff_logged_in_again(other, user.username)
    again = other.post(verify, {"code": codes[3]})

    assert again.status_code == 200
    assert "恢复码错误或已使用" in again.content.decode()
    assert StaticToken.objects.filter(device__user=user).count() == 9
    assert AuditEntry.objects.filter(action="staff_otp.recovery_code_used").count() == 1


def _staff_logged_in_again(client: Client, username: str) -> None:
    response = client.post(reverse("admin:login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302


def test_an_idle_staff_session_is_logged_out_of_the_admin(client: Client) -> None:
    user = _staff_logged_in(client)
    staff_session_verify(client, user)
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.session.get_expiry_age() == settings.KAMENG_STAFF_SESSION_IDLE_SECONDS

    session = client.session
    session[SEEN_SESSION_KEY] = int(time.time()) - settings.KAMENG_STAFF_SESSION_IDLE_SECONDS - 1
    session.save()
    response = client.get(reverse("admin:orders_order_changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert "_auth_user_id" not in client.session


def test_a_recent_staff_session_stays(client: Client) -> None:
    user = _staff_logged_in(client)
    staff_session_verify(client, user)
    session = client.session
    session[SEEN_SESSION_KEY] = int(time.time()) - settings.KAMENG_STAFF_SESSION_IDLE_SECONDS + 60
    session.save()

    assert client.get(reverse("admin:index")).status_code == 200


def test_buyer_sessions_keep_their_usual_age(client: Client) -> None:
    client.force_login(UserFactory.create())

    client.get("/")
    client.get(reverse("admin:index"))

    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE
    assert SEEN_SESSION_KEY not in client.session


def test_a_mistyped_code_is_explained_and_costs_no_attempt(client: Client) -> None:
    user = _staff_logged_in(client)
    device = totp_device_seed(user=user, key_hex=STAFF_TOTP_KEY)
    recovery_codes_replace(user=user)
    verify = reverse("staff_otp:verify")

    for mistyped in ("12345", "1234567", "abc", "abcde-1234"):
        body = client.post(verify, {"code": mistyped}).content.decode()
        assert "验证码是身份验证器上的 6 位数字；恢复码是 10 位字母数字" in body, mistyped
        assert "恢复码错误" not in body
        assert "错误次数过多" not in body

    device.refresh_from_db()
    assert device.throttling_failure_count == 0
    assert StaticDevice.objects.get(user=user).throttling_failure_count == 0
    assert client.post(verify, {"code": staff_totp_code()}).status_code == 302  # no wait was started


def test_a_verified_session_back_on_the_code_pages_goes_on(client: Client) -> None:
    user = _staff_logged_in(client)
    totp_device_seed(user=user, key_hex=STAFF_TOTP_KEY)
    client.post(reverse("staff_otp:verify"), {"code": staff_totp_code()})
    target = reverse("admin:orders_order_changelist")

    for page in ("staff_otp:verify", "staff_otp:enrol"):  # a reload after enrolling, the back button, a bookmark
        response = client.get(f"{reverse(page)}?next={quote(target)}", follow=True)
        assert response.redirect_chain[-1] == (target, 302), page
        assert response.status_code == 200


def test_the_admin_lists_authenticators_and_recovery_codes_in_chinese(client: Client) -> None:
    user = _staff_logged_in(client)
    totp_device_seed(user=user, key_hex=STAFF_TOTP_KEY)
    recovery_codes_replace(user=user)
    client.post(reverse("staff_otp:verify"), {"code": staff_totp_code()})

    index = client.get(reverse("admin:index")).content.decode()
    assert "Static device" not in index
    assert "Otp_Static" not in index
    assert "TOTP device" not in index
    assert "恢复码" in index
    assert "身份验证器" in index
    for name in ("accounts_stafftotpdevice", "accounts_staffrecoverycodes"):
        page = client.get(reverse(f"admin:{name}_changelist")).content.decode()
        assert user.username in page, name
        for english in (">User<", ">Name<", ">Confirmed<", "Created at", "Last used at"):
            assert english not in page, (name, english)
