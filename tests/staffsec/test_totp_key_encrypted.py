"""Staff TOTP secrets encrypted at rest (kameng/accounts/staff_models.py): the raw column holds neither the hex nor
the base32 of the key, codes and recovery codes still work, the migration encrypts a device django-otp stored in
clear (and going back restores it), and `plaintext_scan` looks for TOTP keys."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from kameng.accounts.models import StaffTOTPDevice
from kameng.accounts.staff_otp import recovery_codes_replace, totp_code_now, totp_device_seed
from tests.factories import STAFF_TOTP_KEY, UserFactory, staff_totp_code

BEFORE = [("accounts", "0006_staff_totp_device_encrypted"), ("otp_totp", "0003_add_timestamps")]
AFTER = [("accounts", "0007_staff_totp_keys_encrypted")]
OLD_KEY = b"an-old-plaintext-key".hex()  # 20 bytes, as django-otp makes them


def _raw_key(pk: int) -> bytes:
    with connection.cursor() as cursor:
        column = connection.ops.quote_name("key")  # a reserved word on MySQL/MariaDB
        cursor.execute(f"SELECT {column} FROM accounts_stafftotpdevice WHERE id = %s", [pk])
        value = cursor.fetchone()[0]
    return value.encode() if isinstance(value, str) else bytes(value)


def _base32(key_hex: str) -> str:
    return base64.b32encode(bytes.fromhex(key_hex)).decode().rstrip("=")


@pytest.mark.django_db
def test_the_key_column_holds_neither_the_hex_nor_the_base32_secret() -> None:
    device = totp_device_seed(user=UserFactory.create(is_staff=True), key_hex=STAFF_TOTP_KEY)

    raw = _raw_key(device.pk)

    assert STAFF_TOTP_KEY.encode() not in raw.lower()
    assert _base32(STAFF_TOTP_KEY).encode() not in raw.upper()
    assert bytes.fromhex(STAFF_TOTP_KEY) not in raw
    assert raw[0] == 1  # kameng.core.crypto's ciphertext format
    assert StaffTOTPDevice.objects.get(pk=device.pk).key == STAFF_TOTP_KEY


@pytest.mark.django_db
def test_a_new_device_gets_a_random_encrypted_key() -> None:
    user = UserFactory.create(is_staff=True)
    device = StaffTOTPDevice.objects.create(user=user, name="身份验证器", confirmed=False)

    key = StaffTOTPDevice.objects.get(pk=device.pk).key
    assert len(key) == 40
    assert int(key, 16) >= 0
    assert key.encode() not in _raw_key(device.pk)
    assert "secret=" + base64.b32encode(bytes.fromhex(key)).decode() in device.config_url


@pytest.mark.django_db
def test_verify_token_works_once_per_code_with_the_encrypted_key() -> None:
    device = totp_device_seed(user=UserFactory.create(is_staff=True), key_hex=STAFF_TOTP_KEY)
    loaded = StaffTOTPDevice.objects.get(pk=device.pk)
    code = staff_totp_code()
    wrong = "000000" if code != "000000" else "111111"

    assert loaded.verify_token(code) is True
    assert loaded.verify_token(code) is False  # replayed: last_t moved on
    loaded.refresh_from_db()
    assert loaded.last_t >= 0
    assert loaded.last_used_at is not None
    assert loaded.throttling_failure_count == 1
    assert loaded.verify_token(wrong) is False


@pytest.mark.django_db
@pytest.mark.staff_otp_enforced
def test_code_then_recovery_code_log_in_with_the_encrypted_device() -> None:
    user = UserFactory.create(username="enc-staff", is_staff=True, is_superuser=True)
    totp_device_seed(user=user, key_hex=STAFF_TOTP_KEY)
    codes = recovery_codes_replace(user=user)
    verify = reverse("staff_otp:verify")
    for code in (staff_totp_code(), codes[0]):
        client = Client()
        client.post(reverse("admin:login"), {"username": user.username, "password": "correct-horse-9"})
        StaffTOTPDevice.objects.update(last_t=-1)  # the same time step again for the second login

        assert client.post(verify, {"code": code}).status_code == 302
        assert client.get(reverse("admin:index")).status_code == 200


def _migrate(target: list[tuple[str, str]] | None = None) -> Any:
    executor = MigrationExecutor(connection)
    target = target or executor.loader.graph.leaf_nodes()
    executor.migrate(target)
    executor.loader.build_graph()
    return executor.loader.project_state(target).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_an_existing_plaintext_device_and_going_back_restores_it() -> None:
    user = UserFactory.create(is_staff=True)
    try:
        old = _migrate(BEFORE)
        plain = old.get_model("otp_totp", "TOTPDevice").objects.create(
            user_id=user.pk, name="身份验证器", confirmed=True, key=OLD_KEY, drift=1, last_t=123)

        _migrate(AFTER)

        assert not TOTPDevice.objects.exists()
        device = StaffTOTPDevice.objects.get(user=user)
        assert (device.key, device.confirmed, device.drift, device.last_t) == (OLD_KEY, True, 1, 123)
        assert device.created_at == plain.created_at
        assert OLD_KEY.encode() not in _raw_key(device.pk)
        assert device.verify_token(totp_code_now(OLD_KEY)) or device.verify_token(totp_code_now(OLD_KEY))

        back = _migrate(BEFORE)

        assert list(back.get_model("otp_totp", "TOTPDevice").objects.values_list("user_id", "key")) == [
            (user.pk, OLD_KEY)]
    finally:
        _migrate()
        TOTPDevice.objects.all().delete()


@pytest.mark.django_db
def test_plaintext_scan_finds_a_totp_key_left_in_clear_and_not_an_encrypted_one() -> None:
    user = UserFactory.create(is_staff=True)
    totp_device_seed(user=user, key_hex=STAFF_TOTP_KEY)
    out = io.StringIO()

    call_command("plaintext_scan", stdout=out)

    assert "2 TOTP secret(s)" in out.getvalue()  # the hex and the base32 of the one key
    TOTPDevice.objects.create(user=user, name="old", key=OLD_KEY)
    with pytest.raises(CommandError, match="1 plaintext finding"):
        call_command("plaintext_scan", stdout=(found := io.StringIO()))
    assert "db:otp_totp_totpdevice.key" in found.getvalue()
    assert "TOTP secret" in found.getvalue()
    assert OLD_KEY not in found.getvalue()  # the report masks it
