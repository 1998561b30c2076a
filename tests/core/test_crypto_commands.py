from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from kameng.accounts.models import PHONE_CONTEXT, User
from kameng.accounts.selectors import phone_index_of, user_by_login
from kameng.core.crypto import Keyring, decrypt_text, encrypt_text, keyring, parse_keyring
from kameng.core.management.commands import encryption_rotate
from kameng.core.management.commands.encryption_rotate import EncryptedColumn, encrypted_columns
from kameng.inventory.models import SECRET_CONTEXT, CardKey
from kameng.payments.models import PaymentChannel
from tests.factories import SkuFactory, stock_sku

OLD = "old1:" + base64.b64encode(os.urandom(32)).decode()
NEW = "new2:" + base64.b64encode(os.urandom(32)).decode()


def _all_key_ids() -> dict[str, set[str]]:
    """The key id of every stored ciphertext, per column, read raw from the tables."""
    found: dict[str, set[str]] = {}
    quote = connection.ops.quote_name
    for column in encrypted_columns():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {quote(column.column)} FROM {quote(column.model._meta.db_table)} "
                           f"WHERE {quote(column.column)} IS NOT NULL")
            ids = {Keyring.key_id_of(bytes(row[0])) for row in cursor.fetchall()}
        if ids:
            found[column.label] = ids
    return found


def _seed_encrypted_data() -> tuple[list[str], int, int]:
    secrets = stock_sku(SkuFactory.create(), 5, prefix="ROT")
    user = User(username="rotating", phone="13800138000", phone_index=phone_index_of("13800138000"))
    user.set_password("correct-horse-9")
    user.save()
    channel = PaymentChannel.objects.create(code="rot", name="rot", kind="epay_v1",
                                            gateway_url="http://127.0.0.1/sim/epay/", merchant_id="1001",
                                            merchant_key="merchant-secret-123")
    return secrets, user.pk, channel.pk


def _stored_secrets() -> list[str]:
    return sorted(decrypt_text(bytes(token), context=SECRET_CONTEXT)
                  for token in CardKey.objects.values_list("secret_ciphertext", flat=True))


def _rotate(*args: str) -> str:
    out = StringIO()
    call_command("encryption_rotate", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_rotation_moves_every_ciphertext_to_the_new_key_and_keeps_it_readable() -> None:
    with override_settings(KAMENG_ENCRYPTION_KEYS=OLD):
        secrets, user_id, channel_id = _seed_encrypted_data()
        assert _all_key_ids() == {"inventory.CardKey.secret_ciphertext": {"old1"},
                                  "accounts.User.phone": {"old1"},
                                  "payments.PaymentChannel.merchant_key": {"old1"}}

    with override_settings(KAMENG_ENCRYPTION_KEYS=f"{NEW},{OLD}"):
        # Before the rotation: old data is still readable with the new key active.
        assert _stored_secrets() == sorted(secrets)
        assert User.objects.get(pk=user_id).phone == "13800138000"

        output = _rotate("--batch-size", "2")

        assert "inventory.CardKey.secret_ciphertext: 5 scanned, 0 already current, 5 re-encrypted" in output
        assert "accounts.User.phone: 1 scanned, 0 already current, 1 re-encrypted" in output
        assert "done: 7 value(s) re-encrypted under key id new2" in output
        assert set().union(*_all_key_ids().values()) == {"new2"}

    with override_settings(KAMENG_ENCRYPTION_KEYS=NEW):
        # The old key can now go: everything decrypts with the new one alone.
        assert _stored_secrets() == sorted(secrets)
        assert User.objects.get(pk=user_id).phone == "13800138000"
        assert user_by_login("13800138000") is not None  # blind index untouched
        assert str(PaymentChannel.objects.get(pk=channel_id).merchant_key) == "merchant-secret-123"


@pytest.mark.django_db
def test_rotation_is_idempotent() -> None:
    with override_settings(KAMENG_ENCRYPTION_KEYS=OLD):
        _seed_encrypted_data()
    with override_settings(KAMENG_ENCRYPTION_KEYS=f"{NEW},{OLD}"):
        _rotate()
        before = list(CardKey.objects.order_by("pk").values_list("secret_ciphertext", flat=True))

        output = _rotate()

        assert "done: 0 value(s) re-encrypted" in output
        assert "inventory.CardKey.secret_ciphertext: 5 scanned, 5 already current, 0 re-encrypted" in output
        after = list(CardKey.objects.order_by("pk").values_list("secret_ciphertext", flat=True))
        assert [bytes(token) for token in after] == [bytes(token) for token in before]


@pytest.mark.django_db
def test_dry_run_changes_nothing() -> None:
    with override_settings(KAMENG_ENCRYPTION_KEYS=OLD):
        _seed_encrypted_data()
    with override_settings(KAMENG_ENCRYPTION_KEYS=f"{NEW},{OLD}"):
        output = _rotate("--dry-run")

        assert "done: 7 value(s) would re-encrypt under key id new2" in output
        assert set().union(*_all_key_ids().values()) == {"old1"}


@pytest.mark.django_db
def test_values_under_an_unconfigured_key_fail_loudly_and_stay_untouched() -> None:
    with override_settings(KAMENG_ENCRYPTION_KEYS=OLD):
        secrets, _, _ = _seed_encrypted_data()
    with override_settings(KAMENG_ENCRYPTION_KEYS=NEW), pytest.raises(CommandError, match="could not be decrypted"):
        _rotate()
    with override_settings(KAMENG_ENCRYPTION_KEYS=OLD):
        assert set().union(*_all_key_ids().values()) == {"old1"}
        assert _stored_secrets() == sorted(secrets)


@pytest.mark.django_db
def test_a_value_rewritten_by_the_application_during_rotation_is_not_overwritten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rewrite is guarded by the old ciphertext: a concurrent change wins over the rotation."""
    with override_settings(KAMENG_ENCRYPTION_KEYS=OLD):
        _, user_id, _ = _seed_encrypted_data()
    with override_settings(KAMENG_ENCRYPTION_KEYS=f"{NEW},{OLD}"):
        phone_column = next(column for column in encrypted_columns() if column.label == "accounts.User.phone")
        read_batches = encryption_rotate._batches

        def batches_then_concurrent_write(column: EncryptedColumn, batch_size: int) -> Iterator[list[Any]]:
            for rows in read_batches(column, batch_size):
                User.objects.filter(pk=user_id).update(phone=encrypt_text("13900139000", context=PHONE_CONTEXT))
                yield rows

        monkeypatch.setattr(encryption_rotate, "_batches", batches_then_concurrent_write)
        count = encryption_rotate.column_rotate(phone_column, ring=keyring(), batch_size=10, dry_run=False)

        assert count.changed_meanwhile == 1
        assert count.rotated == 0
        assert User.objects.get(pk=user_id).phone == "13900139000"


def test_keygen_output_parses_as_a_keyring() -> None:
    out = StringIO()
    call_command("encryption_keygen", stdout=out)
    values = dict(line.split("=", 1) for line in out.getvalue().splitlines() if not line.startswith("#"))

    ring = parse_keyring(values["KAMENG_ENCRYPTION_KEYS"], values["KAMENG_BLIND_INDEX_KEY"])

    assert ring.active_id == values["KAMENG_ENCRYPTION_KEYS"].split(":", 1)[0]
    token = ring.encrypt(b"card secret", context=b"ctx")
    assert ring.decrypt(token, context=b"ctx") == b"card secret"
    assert len(ring.blind_index_key) == 32


def test_keygen_entry_only_with_a_chosen_key_id_prepends_to_an_existing_keyring() -> None:
    out = StringIO()
    call_command("encryption_keygen", "--entry-only", "--key-id", "prod-2026", stdout=out)
    entry = out.getvalue().strip()

    ring = parse_keyring(f"{entry},{OLD}", settings.KAMENG_BLIND_INDEX_KEY)

    assert entry.startswith("prod-2026:")
    assert ring.active_id == "prod-2026"
    assert set(ring.keys) == {"prod-2026", "old1"}


@pytest.mark.parametrize("key_id", ["a:b", "a,b", "x" * 33])
def test_keygen_refuses_a_key_id_the_keyring_cannot_hold(key_id: str) -> None:
    with pytest.raises(CommandError):
        call_command("encryption_keygen", "--key-id", key_id, stdout=StringIO())
