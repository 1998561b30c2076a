"""The payment PIN itself (kameng.accounts.paypin): setting it, its lock after wrong tries, the password-free limit,
the staff reset."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.sites import site
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone, translation

from kameng.accounts.admin import UserAdmin
from kameng.accounts.models import User
from kameng.accounts.paypin import (
    PinLockedError,
    PinRequiredError,
    PinWrongError,
    password_free_limit_set,
    payment_pin_reset,
    payment_pin_set,
    payment_pin_verify,
    pin_settings_for,
    wallet_payment_authorize,
)
from kameng.core.errors import ApplicationError, ConflictError
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-9"  # UserFactory's
PIN = "583920"


def _with_pin(pin: str = PIN, limit: str = "0") -> User:
    user = UserFactory.create()
    payment_pin_set(user_id=user.pk, new_pin=pin, password=PASSWORD)
    if limit != "0":
        password_free_limit_set(user_id=user.pk, limit_text=limit, pin=pin)
    user.refresh_from_db()
    return user


def _failures(user: User) -> tuple[int, object]:
    user.refresh_from_db()
    return user.payment_pin_failures, user.payment_pin_locked_until


def test_the_pin_is_stored_hashed_and_checks() -> None:
    user = _with_pin()

    assert user.payment_pin
    assert PIN not in user.payment_pin
    assert user.payment_pin.startswith(("md5$", "pbkdf2_sha256$", "argon2", "bcrypt", "scrypt"))
    payment_pin_verify(user_id=user.pk, pin=PIN)
    assert _failures(user) == (0, None)


@pytest.mark.parametrize("pin", ["000000", "111111", "123456", "654321", "012345", "987654", "121212", "123123"])
def test_trivial_pins_are_refused(pin: str) -> None:
    user = UserFactory.create()

    with pytest.raises(ApplicationError) as refused:
        payment_pin_set(user_id=user.pk, new_pin=pin, password=PASSWORD)

    assert refused.value.code == "pin_too_simple"
    user.refresh_from_db()
    assert user.payment_pin == ""


@pytest.mark.parametrize("pin", ["12345", "1234567", "12a456", "１２３４５６", " 58392", ""])
def test_a_pin_is_exactly_six_ascii_digits(pin: str) -> None:
    user = UserFactory.create()

    with pytest.raises(ApplicationError) as refused:
        payment_pin_set(user_id=user.pk, new_pin=pin, password=PASSWORD)

    assert refused.value.code == "pin_invalid"


def test_the_first_pin_needs_the_login_password_and_a_wrong_one_counts() -> None:
    user = UserFactory.create()

    with pytest.raises(PinWrongError) as wrong:
        payment_pin_set(user_id=user.pk, new_pin=PIN, password="not-my-password")

    assert wrong.value.code == "password_wrong"
    assert wrong.value.extra == {"tries_left": 4}
    user.refresh_from_db()
    assert user.payment_pin == ""
    assert user.payment_pin_failures == 1
    with pytest.raises(ApplicationError) as missing:
        payment_pin_set(user_id=user.pk, new_pin=PIN, password="")
    assert missing.value.code == "password_required"


def test_changing_the_pin_needs_the_old_one() -> None:
    user = _with_pin()

    with pytest.raises(PinWrongError):
        payment_pin_set(user_id=user.pk, new_pin="730195", old_pin="111222")
    payment_pin_set(user_id=user.pk, new_pin="730195", old_pin=PIN)

    payment_pin_verify(user_id=user.pk, pin="730195")
    with pytest.raises(PinWrongError):
        payment_pin_verify(user_id=user.pk, pin=PIN)


def test_an_account_without_a_password_sets_its_first_pin_only_from_a_fresh_login() -> None:
    user = UserFactory.create()
    user.set_unusable_password()
    user.save()

    with pytest.raises(ApplicationError) as stale:
        payment_pin_set(user_id=user.pk, new_pin=PIN, logged_in_at=timezone.now() - timedelta(hours=1))
    assert stale.value.code == "login_not_fresh"
    assert stale.value.status_code == 403

    payment_pin_set(user_id=user.pk, new_pin=PIN, logged_in_at=timezone.now() - timedelta(minutes=1))
    payment_pin_verify(user_id=user.pk, pin=PIN)


def test_five_wrong_pins_lock_it_and_each_wrong_one_says_the_tries_left() -> None:
    user = _with_pin()

    tries_left = []
    for _ in range(4):
        with pytest.raises(PinWrongError) as wrong:
            payment_pin_verify(user_id=user.pk, pin="000001")
        tries_left.append(wrong.value.extra["tries_left"])
    with pytest.raises(PinLockedError) as locked:
        payment_pin_verify(user_id=user.pk, pin="000001")

    assert tries_left == [4, 3, 2, 1]
    assert locked.value.status_code == 429
    assert locked.value.code == "pin_locked"
    assert 899 <= locked.value.extra["retry_after"] <= 900
    assert "后再试" in locked.value.message
    # Locked: even the right PIN is refused, and nothing more is counted.
    with pytest.raises(PinLockedError):
        payment_pin_verify(user_id=user.pk, pin=PIN)
    failures, locked_until = _failures(user)
    assert failures == 5
    assert locked_until is not None


def test_the_lock_runs_out_and_the_count_starts_afresh() -> None:
    user = _with_pin()
    for _ in range(5):
        with pytest.raises((PinWrongError, PinLockedError)):
            payment_pin_verify(user_id=user.pk, pin="000001")
    User.objects.filter(pk=user.pk).update(payment_pin_locked_until=timezone.now() - timedelta(seconds=1))

    with pytest.raises(PinWrongError) as wrong:
        payment_pin_verify(user_id=user.pk, pin="000001")
    assert wrong.value.extra == {"tries_left": 4}
    payment_pin_verify(user_id=user.pk, pin=PIN)

    assert _failures(user) == (0, None)


def test_a_right_pin_clears_the_count() -> None:
    user = _with_pin()
    for _ in range(3):
        with pytest.raises(PinWrongError):
            payment_pin_verify(user_id=user.pk, pin="000001")

    payment_pin_verify(user_id=user.pk, pin=PIN)
    with pytest.raises(PinWrongError) as wrong:
        payment_pin_verify(user_id=user.pk, pin="000001")

    assert wrong.value.extra == {"tries_left": 4}


def test_a_malformed_pin_is_refused_without_counting() -> None:
    user = _with_pin()

    with pytest.raises(ApplicationError) as refused:
        payment_pin_verify(user_id=user.pk, pin="12")

    assert refused.value.code == "pin_invalid"
    assert _failures(user) == (0, None)


@override_settings(KAMENG_PAYMENT_PIN_MAX_FAILURES=3, KAMENG_PAYMENT_PIN_LOCK_SECONDS=60)
def test_the_limits_come_from_settings() -> None:
    user = _with_pin()
    for _ in range(2):
        with pytest.raises(PinWrongError):
            payment_pin_verify(user_id=user.pk, pin="000001")

    with pytest.raises(PinLockedError) as locked:
        payment_pin_verify(user_id=user.pk, pin="000001")

    assert 59 <= locked.value.extra["retry_after"] <= 60


def test_password_free_limit_boundaries() -> None:
    user = _with_pin(limit="10.00")
    settings_now = pin_settings_for(user_id=user.pk)

    wallet_payment_authorize(user_id=user.pk, amount=Decimal("10.00"), pin=None)  # at the limit: no PIN
    with pytest.raises(PinRequiredError) as required:
        wallet_payment_authorize(user_id=user.pk, amount=Decimal("10.01"), pin=None)

    assert settings_now.password_free_limit == Decimal("10.00")
    assert required.value.status_code == 403
    assert required.value.code == "pin_required"
    assert required.value.extra == {"amount": "10.01", "password_free_limit": "10.00"}
    wallet_payment_authorize(user_id=user.pk, amount=Decimal("10.01"), pin=PIN)


def test_without_a_pin_nothing_is_asked_and_with_limit_zero_everything_is() -> None:
    no_pin = UserFactory.create()
    wallet_payment_authorize(user_id=no_pin.pk, amount=Decimal("9999.00"), pin=None)

    user = _with_pin()
    with pytest.raises(PinRequiredError):
        wallet_payment_authorize(user_id=user.pk, amount=Decimal("0.01"), pin=None)


@override_settings(KAMENG_PASSWORD_FREE_MAX="50.00")
def test_the_limit_is_capped_by_staff() -> None:
    user = _with_pin()

    with pytest.raises(ApplicationError) as over:
        password_free_limit_set(user_id=user.pk, limit_text="50.01", pin=PIN)
    assert over.value.code == "invalid_amount"

    assert password_free_limit_set(user_id=user.pk, limit_text="50", pin=PIN) == Decimal("50.00")
    with override_settings(KAMENG_PASSWORD_FREE_MAX="20.00"):  # staff lowered the cap afterwards
        with pytest.raises(PinRequiredError):
            wallet_payment_authorize(user_id=user.pk, amount=Decimal("20.01"), pin=None)
        wallet_payment_authorize(user_id=user.pk, amount=Decimal("20.00"), pin=None)


@pytest.mark.parametrize("text", ["-5", "-0.01", "-0", " -200 "])
def test_a_negative_limit_is_refused_as_negative_since_0_is_allowed(text: str) -> None:
    user = _with_pin(limit="20")

    with pytest.raises(ApplicationError) as refused:
        password_free_limit_set(user_id=user.pk, limit_text=text, pin=PIN)

    assert (refused.value.code, refused.value.message) == ("invalid_amount", "金额不能为负数")
    user.refresh_from_db()
    assert user.password_free_limit == Decimal("20.00")


def test_the_security_page_says_a_negative_limit_is_negative(client: Client) -> None:
    user = _with_pin(limit="20")
    client.force_login(user)

    refused = client.post(reverse("web:security_limit"), {"limit": "-5", "pin": PIN})

    assert refused.status_code == 400
    assert "金额不能为负数" in refused.content.decode()
    assert "金额必须大于 0" not in refused.content.decode()
    with translation.override("en"):
        assert translation.gettext("金额不能为负数") == "The amount cannot be negative"
    user.refresh_from_db()
    assert user.password_free_limit == Decimal("20.00")


def test_raising_the_limit_needs_the_pin_lowering_it_does_not() -> None:
    user = _with_pin(limit="100")

    with pytest.raises(ApplicationError) as required:
        password_free_limit_set(user_id=user.pk, limit_text="150", pin="")
    assert required.value.code == "pin_required"
    with pytest.raises(PinWrongError):
        password_free_limit_set(user_id=user.pk, limit_text="150", pin="000001")

    assert password_free_limit_set(user_id=user.pk, limit_text="20.5", pin="") == Decimal("20.50")
    assert password_free_limit_set(user_id=user.pk, limit_text="0", pin="") == Decimal("0.00")
    assert pin_settings_for(user_id=user.pk).password_free_limit == Decimal("0.00")


def test_no_limit_without_a_pin() -> None:
    user = UserFactory.create()

    with pytest.raises(ConflictError) as refused:
        password_free_limit_set(user_id=user.pk, limit_text="50", pin="")

    assert refused.value.code == "pin_not_set"


def test_staff_reset_clears_the_pin_the_lock_and_the_limit() -> None:
    user = _with_pin(limit="30")
    for _ in range(5):
        with pytest.raises((PinWrongError, PinLockedError)):
            payment_pin_verify(user_id=user.pk, pin="000001")

    payment_pin_reset(user_id=user.pk)

    user.refresh_from_db()
    assert (user.payment_pin, user.payment_pin_failures, user.payment_pin_locked_until,
            user.password_free_limit) == ("", 0, None, Decimal("0.00"))
    wallet_payment_authorize(user_id=user.pk, amount=Decimal("500.00"), pin=None)


def test_the_admin_shows_the_pin_state_and_resets_it(admin_client: Client) -> None:
    user = _with_pin(limit="30")

    page = admin_client.get(f"/admin/accounts/user/{user.pk}/change/")
    assert page.status_code == 200
    assert "支付设置" in page.content.decode()
    response = admin_client.post("/admin/accounts/user/", {"action": "reset_payment_pin",
                                                           "_selected_action": [str(user.pk)]})

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.payment_pin == ""


def test_the_admin_action_is_for_staff_who_may_change_users() -> None:
    request = RequestFactory().get("/admin/accounts/user/")
    request.user = UserFactory.create(is_staff=True)

    actions = UserAdmin(User, site).get_actions(request)

    assert "reset_payment_pin" not in actions
