from __future__ import annotations

import base64
import os

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from pytest_django.fixtures import Settings as SettingsWrapper

from kameng.accounts.models import PHONE_CONTEXT, User
from kameng.core.crypto import (
    DecryptionError,
    Keyring,
    blind_index,
    decrypt_text,
    encrypt_text,
    generate_key,
    keyring,
    parse_keyring,
)
from tests.factories import UserFactory

PHONE = "13800138000"


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_round_trip() -> None:
    token = encrypt_text("ABCD-1234-卡密", context="inventory.cardkey.secret")

    assert decrypt_text(token, context="inventory.cardkey.secret") == "ABCD-1234-卡密"


def test_ciphertext_holds_no_plaintext_and_carries_the_key_id() -> None:
    token = encrypt_text(PHONE, context=PHONE_CONTEXT)

    assert PHONE.encode() not in token
    assert Keyring.key_id_of(token) == keyring().active_id


def test_ciphertext_is_bound_to_its_context() -> None:
    token = encrypt_text(PHONE, context="accounts.user.phone")

    with pytest.raises(DecryptionError, match="failed authentication"):
        decrypt_text(token, context="inventory.cardkey.secret")


@pytest.mark.parametrize("position", [-1, -20, 30])
def test_a_tampered_byte_fails(position: int) -> None:
    token = bytearray(encrypt_text(PHONE, context=PHONE_CONTEXT))
    token[position] ^= 0x01

    with pytest.raises(DecryptionError, match="failed authentication"):
        decrypt_text(bytes(token), context=PHONE_CONTEXT)


def test_an_unknown_format_version_fails() -> None:
    token = bytearray(encrypt_text(PHONE, context=PHONE_CONTEXT))
    token[0] = 99

    with pytest.raises(DecryptionError, match="unknown ciphertext format"):
        decrypt_text(bytes(token), context=PHONE_CONTEXT)


def test_unknown_key_id_fails_with_a_clear_error(settings: SettingsWrapper) -> None:
    settings.KAMENG_ENCRYPTION_KEYS = f"gone:{_key()}"
    token = encrypt_text(PHONE, context=PHONE_CONTEXT)
    settings.KAMENG_ENCRYPTION_KEYS = f"fresh:{_key()}"

    with pytest.raises(DecryptionError, match="no key configured for key id 'gone'"):
        decrypt_text(token, context=PHONE_CONTEXT)


def test_two_encryptions_of_the_same_text_differ() -> None:
    first = encrypt_text(PHONE, context=PHONE_CONTEXT)
    second = encrypt_text(PHONE, context=PHONE_CONTEXT)

    assert first != second
    assert decrypt_text(first, context=PHONE_CONTEXT) == decrypt_text(second, context=PHONE_CONTEXT) == PHONE


def test_rotation_old_key_still_decrypts_new_key_encrypts(settings: SettingsWrapper) -> None:
    old, new = _key(), _key()
    settings.KAMENG_ENCRYPTION_KEYS = f"k2025:{old}"
    before = encrypt_text(PHONE, context=PHONE_CONTEXT)
    settings.KAMENG_ENCRYPTION_KEYS = f"k2026:{new}, k2025:{old}"

    after = encrypt_text(PHONE, context=PHONE_CONTEXT)

    assert Keyring.key_id_of(before) == "k2025"
    assert Keyring.key_id_of(after) == "k2026"
    assert decrypt_text(before, context=PHONE_CONTEXT) == PHONE
    assert decrypt_text(after, context=PHONE_CONTEXT) == PHONE


def test_encrypt_many_gives_distinct_tokens_that_decrypt() -> None:
    ring = keyring()
    tokens = ring.encrypt_many([b"a", b"a", b"b"], context=b"ctx")

    assert len(set(tokens)) == 3
    assert [ring.decrypt(token, context=b"ctx") for token in tokens] == [b"a", b"a", b"b"]


def test_blind_index_is_deterministic_per_key_and_context(settings: SettingsWrapper) -> None:
    first = blind_index(PHONE, context=PHONE_CONTEXT)

    assert blind_index(PHONE, context=PHONE_CONTEXT) == first
    assert len(first) == 32
    assert blind_index("13800138001", context=PHONE_CONTEXT) != first
    assert blind_index(PHONE, context="other.context") != first

    settings.KAMENG_BLIND_INDEX_KEY = _key()
    assert blind_index(PHONE, context=PHONE_CONTEXT) != first


def test_blind_index_does_not_depend_on_the_encryption_key(settings: SettingsWrapper) -> None:
    first = blind_index(PHONE, context=PHONE_CONTEXT)
    settings.KAMENG_ENCRYPTION_KEYS = f"other:{_key()}"

    assert blind_index(PHONE, context=PHONE_CONTEXT) == first


def test_generate_key_makes_a_usable_key() -> None:
    ring = parse_keyring(f"new:{generate_key()}", generate_key())

    assert ring.active_id == "new"
    assert ring.decrypt(ring.encrypt(b"x", context=b"c"), context=b"c") == b"x"


@pytest.mark.parametrize(
    ("keys", "blind", "message"),
    [
        ("", "BLIND", "KAMENG_ENCRYPTION_KEYS is empty: set it to 'kid:base64key' (`manage.py encryption_keygen`"),
        (" , ", "BLIND", "KAMENG_ENCRYPTION_KEYS is empty"),
        ("KEY", "BLIND", "each KAMENG_ENCRYPTION_KEYS entry must be 'kid:base64key'"),
        (":KEY", "BLIND", "each KAMENG_ENCRYPTION_KEYS entry must be 'kid:base64key'"),
        ("k" * 33 + ":KEY", "BLIND", "kid ≤ 32 bytes"),
        ("k1:not base64!!", "BLIND", "encryption key 'k1' is not valid base64"),
        ("k1:" + base64.b64encode(b"short").decode(), "BLIND",
         "encryption key 'k1' must be 32 bytes (base64 of 32 random bytes), got 5"),
        ("k1:KEY", "", "KAMENG_BLIND_INDEX_KEY is empty: set it to base64 of 32 random bytes"),
        ("k1:KEY", "@@@", "blind index key is not valid base64"),
        ("k1:KEY", base64.b64encode(b"x" * 16).decode(), "blind index key must be 32 bytes"),
    ],
)
def test_malformed_settings_raise_an_actionable_error(keys: str, blind: str, message: str) -> None:
    good = _key()
    keys = keys.replace("KEY", good)
    blind = blind.replace("BLIND", _key())

    with pytest.raises(ImproperlyConfigured) as error:
        parse_keyring(keys, blind)

    assert message in str(error.value)


def test_malformed_settings_surface_through_the_process_keyring(settings: SettingsWrapper) -> None:
    settings.KAMENG_ENCRYPTION_KEYS = ""

    with pytest.raises(ImproperlyConfigured, match="KAMENG_ENCRYPTION_KEYS is empty"):
        encrypt_text(PHONE, context=PHONE_CONTEXT)


def _raw_phone_column(user_id: int) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT phone FROM {User._meta.db_table} WHERE id = %s", [user_id])
        row = cursor.fetchone()
    assert row is not None
    return bytes(row[0])


@pytest.mark.django_db
def test_encrypted_field_stores_ciphertext_and_reads_plaintext() -> None:
    user = UserFactory.create(phone=PHONE)

    raw = _raw_phone_column(user.pk)

    assert PHONE.encode() not in raw
    assert PHONE not in raw.decode("latin-1")
    assert decrypt_text(raw, context=PHONE_CONTEXT) == PHONE
    assert User.objects.get(pk=user.pk).phone == PHONE


@pytest.mark.django_db
def test_encrypted_field_keeps_null_and_is_never_serialised() -> None:
    user = UserFactory.create(phone=None)

    assert User.objects.get(pk=user.pk).phone is None
    user.phone = PHONE
    assert User._meta.get_field("phone").value_to_string(user) == "***"


@pytest.mark.django_db
def test_encrypted_field_row_survives_a_key_rotation(settings: SettingsWrapper) -> None:
    old = _key()
    settings.KAMENG_ENCRYPTION_KEYS = f"old:{old}"
    user = UserFactory.create(phone=PHONE)
    settings.KAMENG_ENCRYPTION_KEYS = f"new:{_key()},old:{old}"

    assert User.objects.get(pk=user.pk).phone == PHONE
    assert Keyring.key_id_of(_raw_phone_column(user.pk)) == "old"
