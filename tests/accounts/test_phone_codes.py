"""SMS codes for logging in by phone: expiry, single use, brute force, the send limits, one step to an account."""

from __future__ import annotations

import hmac
import logging

import pytest
from django.core.cache import cache
from django.test import Client, override_settings
from django.urls import reverse

from kameng.accounts import phone_login
from kameng.accounts.models import PhoneCode, User
from kameng.accounts.phone_login import phone_code_send, phone_login_with_code
from kameng.accounts.selectors import phone_index_of
from kameng.accounts.services import user_register
from kameng.core.errors import ApplicationError
from tests.accounts.phone_support import (
    Clock,
    RecordingSender,
    clock_install,
    other_code,
    recording_sender_install,
)

pytestmark = pytest.mark.django_db

PHONE = "13812345678"
ADDRESS = "198.51.100.7"


@pytest.fixture
def sender(monkeypatch: pytest.MonkeyPatch) -> RecordingSender:
    return recording_sender_install(monkeypatch)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return clock_install(monkeypatch)


def _cooldown_over(phone: str = PHONE) -> None:
    cache.delete(phone_login._cooldown_key(phone, "login"))


def _refused(**kwargs: str) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        phone_login_with_code(**kwargs)
    return refused.value


# --- one step: an unknown number registers, a known one logs in -----------------------------------------------------

def test_a_new_number_registers_with_its_code_and_logs_in_with_the_next(sender: RecordingSender) -> None:
    sent = phone_code_send(phone=PHONE, address=ADDRESS, device="c:device-1")

    assert (sent.expires_in, sent.resend_in) == (300, 60)
    assert [(s.phone, len(s.code), s.minutes) for s in sender.sent] == [(PHONE, 6, 5)]
    first = phone_login_with_code(phone=PHONE, code=sender.last_code, address=ADDRESS)

    assert first.created is True
    assert first.user.username.startswith("m-")
    assert first.user.phone == PHONE
    assert first.user.has_usable_password() is False
    assert User.objects.count() == 1

    _cooldown_over()
    phone_code_send(phone=PHONE, address=ADDRESS)
    again = phone_login_with_code(phone=PHONE, code=sender.last_code, address=ADDRESS)

    assert (again.created, again.user.pk) == (False, first.user.pk)
    assert User.objects.count() == 1


def test_an_account_registered_with_a_password_logs_in_by_code_and_keeps_its_password(
        sender: RecordingSender) -> None:
    user = user_register(login=PHONE, password="correct-horse-9")
    phone_code_send(phone=PHONE)

    result = phone_login_with_code(phone=PHONE, code=sender.last_code)

    assert (result.created, result.user.pk) == (False, user.pk)
    result.user.refresh_from_db()
    assert result.user.check_password("correct-horse-9")


def test_a_disabled_account_is_refused_even_with_the_right_code(sender: RecordingSender) -> None:
    user = user_register(login=PHONE, password="correct-horse-9")
    User.objects.filter(pk=user.pk).update(is_active=False)
    phone_code_send(phone=PHONE)

    error = _refused(phone=PHONE, code=sender.last_code)

    assert (error.code, error.status_code) == ("account_disabled", 403)


@pytest.mark.parametrize("phone", ["1381234567", "23812345678", "138123456789", "138-1234-5678", ""])
def test_a_malformed_number_is_refused_and_nothing_is_sent(sender: RecordingSender, phone: str) -> None:
    with pytest.raises(ApplicationError) as refused:
        phone_code_send(phone=phone)

    assert (refused.value.code, refused.value.status_code) == ("invalid_phone", 400)
    assert sender.sent == []
    assert PhoneCode.objects.count() == 0


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "12 345", ""])
def test_a_malformed_code_is_refused_without_spending_an_attempt(sender: RecordingSender, code: str) -> None:
    phone_code_send(phone=PHONE)

    error = _refused(phone=PHONE, code=code)

    assert (error.code, error.status_code) == ("invalid_code_format", 400)
    assert PhoneCode.objects.get().attempts == 0


# --- the code itself ------------------------------------------------------------------------------------------------

def test_the_code_is_stored_only_as_a_keyed_hash(sender: RecordingSender) -> None:
    phone_code_send(phone=PHONE)
    row = PhoneCode.objects.get()

    assert sender.last_code not in row.code_hash
    assert len(row.code_hash) == 64
    assert row.phone_key == phone_index_of(PHONE).hex()
    assert PHONE not in str(PhoneCode.objects.values().get())
    assert (row.purpose, row.attempts, row.used_at) == ("login", 0, None)


def test_codes_are_six_random_digits(sender: RecordingSender) -> None:
    for number in range(20):
        phone_code_send(phone=f"139000000{number:02d}")

    codes = [sent.code for sent in sender.sent]
    assert all(len(code) == 6 and code.isdigit() for code in codes)
    assert len(set(codes)) > 15


def test_a_code_is_valid_until_just_before_five_minutes(sender: RecordingSender, clock: Clock) -> None:
    phone_code_send(phone=PHONE)
    clock.advance(seconds=299, microseconds=999_999)

    assert phone_login_with_code(phone=PHONE, code=sender.last_code).created is True


def test_a_code_is_dead_at_exactly_five_minutes(sender: RecordingSender, clock: Clock) -> None:
    phone_code_send(phone=PHONE)
    clock.advance(seconds=300)

    error = _refused(phone=PHONE, code=sender.last_code)

    assert (error.code, error.status_code) == ("invalid_code", 400)
    assert User.objects.count() == 0
    assert PhoneCode.objects.get().used_at is None


def test_a_code_works_once(sender: RecordingSender) -> None:
    phone_code_send(phone=PHONE)
    code = sender.last_code
    phone_login_with_code(phone=PHONE, code=code)

    error = _refused(phone=PHONE, code=code)

    assert error.code == "invalid_code"
    assert PhoneCode.objects.get().used_at is not None


def test_a_code_is_good_only_for_its_own_number(sender: RecordingSender) -> None:
    phone_code_send(phone=PHONE)

    error = _refused(phone="13900000000", code=sender.last_code)

    assert error.code == "invalid_code"
    assert User.objects.count() == 0


def test_a_new_code_retires_the_previous_one(sender: RecordingSender) -> None:
    phone_code_send(phone=PHONE)
    old = sender.last_code
    _cooldown_over()
    phone_code_send(phone=PHONE)
    new = sender.last_code
    if old == new:  # one chance in a million: the test says nothing then
        pytest.skip("the two random codes happened to be equal")

    assert _refused(phone=PHONE, code=old).code == "invalid_code"
    assert phone_login_with_code(phone=PHONE, code=new).created is True


def test_five_wrong_codes_kill_the_code_even_for_the_right_one(sender: RecordingSender) -> None:
    phone_code_send(phone=PHONE)
    right = sender.last_code
    wrong = other_code(right)

    errors = [_refused(phone=PHONE, code=wrong) for _ in range(5)]

    assert [error.code for error in errors] == ["invalid_code"] * 4 + ["code_dead"]
    assert PhoneCode.objects.get().attempts == 5
    assert _refused(phone=PHONE, code=right).code == "invalid_code"
    assert PhoneCode.objects.get().attempts == 5  # a dead code counts nothing more
    assert User.objects.count() == 0


def test_the_code_is_compared_in_constant_time(sender: RecordingSender, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real_compare_digest = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real_compare_digest(a, b)

    monkeypatch.setattr(phone_login.hmac, "compare_digest", spy)
    phone_code_send(phone=PHONE)
    _refused(phone=PHONE, code=other_code(sender.last_code))
    phone_login_with_code(phone=PHONE, code=sender.last_code)

    row = PhoneCode.objects.get()
    assert len(calls) == 2
    assert all(stored == row.code_hash for stored, _ in calls)


def test_a_code_the_provider_did_not_send_is_not_kept(sender: RecordingSender) -> None:
    sender.fail_with = ApplicationError("短信发送失败，请稍后再试", code="sms_unavailable", status_code=503)

    with pytest.raises(ApplicationError) as refused:
        phone_code_send(phone=PHONE)

    assert refused.value.code == "sms_unavailable"
    assert PhoneCode.objects.count() == 0


# --- send limits ---------------------------------------------------------------------------------------------------

def test_a_second_code_within_a_minute_is_refused_with_retry_after(sender: RecordingSender) -> None:
    phone_code_send(phone=PHONE, address=ADDRESS)

    with pytest.raises(ApplicationError) as refused:
        phone_code_send(phone=PHONE, address="203.0.113.1")

    assert (refused.value.code, refused.value.status_code) == ("too_many_codes", 429)
    assert 55 <= refused.value.extra["retry_after"] <= 60
    assert refused.value.message.startswith("验证码发送过于频繁")
    assert len(sender.sent) == 1
    assert PhoneCode.objects.count() == 1


@override_settings(KAMENG_SMS_PER_PHONE_PER_HOUR=3)
def test_the_hourly_limit_per_number(sender: RecordingSender) -> None:
    for _ in range(3):
        _cooldown_over()
        phone_code_send(phone=PHONE)
    _cooldown_over()

    with pytest.raises(ApplicationError) as refused:
        phone_code_send(phone=PHONE, address="203.0.113.1", device="c:other")

    assert (refused.value.code, refused.value.status_code) == ("too_many_codes", 429)
    assert refused.value.message.startswith("该手机号获取验证码次数过多")
    assert 3500 <= refused.value.extra["retry_after"] <= 3600
    assert len(sender.sent) == 3
    _cooldown_over()
    phone_code_send(phone="13900000000")  # another number is not concerned
    assert len(sender.sent) == 4


@override_settings(KAMENG_SMS_PER_PHONE_PER_HOUR=100, KAMENG_SMS_PER_PHONE_PER_DAY=4)
def test_the_daily_limit_per_number(sender: RecordingSender) -> None:
    for _ in range(4):
        _cooldown_over()
        phone_code_send(phone=PHONE)
    _cooldown_over()

    with pytest.raises(ApplicationError) as refused:
        phone_code_send(phone=PHONE)

    assert refused.value.status_code == 429
    assert refused.value.extra["retry_after"] > 3600
    assert len(sender.sent) == 4


@override_settings(KAMENG_SMS_PER_ADDRESS_PER_HOUR=3)
def test_the_hourly_limit_per_address_counts_every_number(sender: RecordingSender) -> None:
    for number in range(3):
        phone_code_send(phone=f"1390000000{number}", address=ADDRESS)

    with pytest.raises(ApplicationError) as refused:
        phone_code_send(phone="13900000009", address=ADDRESS)

    assert (refused.value.code, refused.value.status_code) == ("too_many_codes", 429)
    assert refused.value.message.startswith("当前网络获取验证码过于频繁")
    assert len(sender.sent) == 3
    phone_code_send(phone="13900000008", address="203.0.113.1")  # another address is not concerned
    assert len(sender.sent) == 4


@override_settings(KAMENG_SMS_PER_ADDRESS_PER_HOUR=2)
def test_an_ipv6_slash_64_shares_one_address_budget(sender: RecordingSender) -> None:
    phone_code_send(phone="13900000001", address="2001:db8:1:2::1")
    phone_code_send(phone="13900000002", address="2001:db8:1:2::ffff")

    with pytest.raises(ApplicationError) as refused:
        phone_code_send(phone="13900000003", address="2001:db8:1:2:abcd::9")

    assert refused.value.status_code == 429
    assert len(sender.sent) == 2


@override_settings(KAMENG_SMS_PER_DEVICE_PER_HOUR=2)
def test_the_hourly_limit_per_device(sender: RecordingSender) -> None:
    phone_code_send(phone="13900000001", address="203.0.113.1", device="h:phone-app-1")
    phone_code_send(phone="13900000002", address="203.0.113.2", device="h:phone-app-1")

    with pytest.raises(ApplicationError) as refused:
        phone_code_send(phone="13900000003", address="203.0.113.3", device="h:phone-app-1")

    assert (refused.value.code, refused.value.status_code) == ("too_many_codes", 429)
    assert refused.value.message.startswith("当前设备获取验证码过于频繁")
    assert len(sender.sent) == 2
    phone_code_send(phone="13900000004", address="203.0.113.4", device="h:phone-app-2")
    assert len(sender.sent) == 3


def test_limit_keys_hold_no_number_and_no_address(sender: RecordingSender) -> None:
    phone_code_send(phone=PHONE, address=ADDRESS, device="c:device-1")

    backend = getattr(cache, "_cache", None)
    if backend is not None and hasattr(backend, "get_client"):
        keys = [key.decode() for key in backend.get_client().scan_iter(match=f"{cache.key_prefix}:*")]
    else:
        keys = [str(key) for key in backend]  # type: ignore[union-attr]
    assert keys
    assert not [key for key in keys if PHONE in key or ADDRESS in key or "device-1" in key]


@override_settings(KAMENG_REGISTRATIONS_PER_ADDRESS_PER_HOUR=1)
def test_registering_by_code_counts_against_the_address_registrations(sender: RecordingSender) -> None:
    phone_code_send(phone="13900000001", address=ADDRESS)
    phone_login_with_code(phone="13900000001", code=sender.last_code, address=ADDRESS)
    phone_code_send(phone="13900000002", address=ADDRESS)

    error = _refused(phone="13900000002", code=sender.last_code, address=ADDRESS)

    assert (error.code, error.status_code) == ("too_many_registrations", 429)
    assert User.objects.count() == 1
    assert PhoneCode.objects.filter(used_at__isnull=True).count() == 1  # the code is still good later


# --- the console backend -----------------------------------------------------------------------------------------

def test_the_console_backend_logs_the_code_with_the_number_masked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kameng.sms"):
        phone_code_send(phone=PHONE)

    [record] = [record for record in caplog.records if record.name == "kameng.sms"]
    message = record.getMessage()
    assert message.startswith("短信验证码 ")
    assert "138****5678" in message
    assert PHONE not in message
    code = message.split()[1]
    assert len(code) == 6
    assert code.isdigit()
    assert phone_login_with_code(phone=PHONE, code=code).created is True


# --- back office -------------------------------------------------------------------------------------------------

def test_the_back_office_shows_no_secret_and_finds_a_number_by_exact_match(admin_client: Client,
                                                                         sender: RecordingSender) -> None:
    phone_code_send(phone=PHONE)
    _cooldown_over("13900000000")
    phone_code_send(phone="13900000000")
    row = PhoneCode.objects.get(phone_key=phone_index_of(PHONE).hex())
    changelist = reverse("admin:accounts_phonecode_changelist")

    found = admin_client.get(changelist, {"q": PHONE})
    page = admin_client.get(reverse("admin:accounts_phonecode_change", args=[row.pk])).content.decode()

    assert found.status_code == 200
    assert list(found.context["cl"].result_list) == [row]
    for secret in (row.code_hash, row.phone_key, PHONE):  # the code itself is stored nowhere to show
        assert secret not in page
    assert admin_client.get(reverse("admin:accounts_phonecode_add")).status_code == 403


def test_code_rows_older_than_a_week_are_purged_by_the_hourly_task(sender: RecordingSender, clock: Clock) -> None:
    from kameng.accounts.tasks import purge_phone_codes
    from kameng.celery import app

    phone_code_send(phone=PHONE)
    clock.advance(days=6)
    _cooldown_over()
    phone_code_send(phone=PHONE)
    clock.advance(days=1, seconds=1)

    assert purge_phone_codes.delay().get() == 1
    assert PhoneCode.objects.count() == 1
    assert app.conf.beat_schedule["accounts-purge-phone-codes"]["task"] == purge_phone_codes.name
