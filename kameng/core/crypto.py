"""Field-level encryption (AES-256-GCM with key ids) and keyed blind indexes.

Ciphertext layout: ``version(1) | len(kid)(1) | kid | nonce(12) | ciphertext+tag``. The key id lets old rows be
read after a rotation (`manage.py encryption_rotate` re-encrypts them under the active key). Every ciphertext is
bound to a *context* (table and column) as associated data, so a value copied into another column fails to decrypt.

Blind indexes are HMAC-SHA256 under a separate key: equal inputs give equal fingerprints (duplicate detection,
lookups by phone number) without the database ever holding the plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

FORMAT_VERSION = 1
NONCE_BYTES = 12


class DecryptionError(Exception):
    """The ciphertext is damaged, was moved to another column, or its key is not configured."""


@dataclass(frozen=True)
class Keyring:
    active_id: str
    keys: dict[str, AESGCM]
    blind_index_key: bytes

    def encrypt(self, plaintext: bytes, *, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        kid = self.active_id.encode()
        body = self.keys[self.active_id].encrypt(nonce, plaintext, context)
        return bytes((FORMAT_VERSION, len(kid))) + kid + nonce + body

    def encrypt_many(self, plaintexts: Iterable[bytes], *, context: bytes) -> list[bytes]:
        aead = self.keys[self.active_id]
        kid = self.active_id.encode()
        head = bytes((FORMAT_VERSION, len(kid))) + kid
        out = []
        for plaintext in plaintexts:
            nonce = os.urandom(NONCE_BYTES)
            out.append(head + nonce + aead.encrypt(nonce, plaintext, context))
        return out

    def decrypt(self, token: bytes, *, context: bytes) -> bytes:
        token = bytes(token)
        if len(token) < 2 or token[0] != FORMAT_VERSION:
            raise DecryptionError("unknown ciphertext format")
        kid_len = token[1]
        kid = token[2 : 2 + kid_len].decode(errors="replace")
        aead = self.keys.get(kid)
        if aead is None:
            raise DecryptionError(f"no key configured for key id {kid!r}")
        nonce_at = 2 + kid_len
        nonce = token[nonce_at : nonce_at + NONCE_BYTES]
        try:
            return aead.decrypt(nonce, token[nonce_at + NONCE_BYTES :], context)
        except InvalidTag as error:
            raise DecryptionError("ciphertext failed authentication") from error

    @staticmethod
    def key_id_of(token: bytes) -> str:
        token = bytes(token)
        return token[2 : 2 + token[1]].decode(errors="replace")

    def fingerprint(self, value: bytes, *, context: bytes) -> bytes:
        return hmac.new(self.blind_index_key, context + b"\x00" + value, hashlib.sha256).digest()


def _decode_key(text: str, what: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ImproperlyConfigured(f"{what} is not valid base64") from error
    if len(key) != 32:
        raise ImproperlyConfigured(f"{what} must be 32 bytes (base64 of 32 random bytes), got {len(key)}")
    return key


def parse_keyring(encryption_keys: str, blind_index_key: str) -> Keyring:
    entries = [entry.strip() for entry in encryption_keys.split(",") if entry.strip()]
    if not entries:
        raise ImproperlyConfigured(
            "KAMENG_ENCRYPTION_KEYS is empty: set it to 'kid:base64key' (`manage.py encryption_keygen` makes one)"
        )
    keys: dict[str, AESGCM] = {}
    for entry in entries:
        kid, sep, encoded = entry.partition(":")
        if not sep or not kid or len(kid.encode()) > 32:
            raise ImproperlyConfigured("each KAMENG_ENCRYPTION_KEYS entry must be 'kid:base64key' (kid ≤ 32 bytes)")
        keys[kid] = AESGCM(_decode_key(encoded, f"encryption key {kid!r}"))
    if not blind_index_key:
        raise ImproperlyConfigured("KAMENG_BLIND_INDEX_KEY is empty: set it to base64 of 32 random bytes")
    active = entries[0].partition(":")[0]
    return Keyring(active_id=active, keys=keys, blind_index_key=_decode_key(blind_index_key, "blind index key"))


_lock = threading.Lock()
_cached: tuple[tuple[str, str], Keyring] | None = None


def keyring() -> Keyring:
    """The process keyring, rebuilt when the settings change (tests override them)."""
    global _cached  # noqa: PLW0603 - a process-wide cache keyed by the settings it was built from
    source = (settings.KAMENG_ENCRYPTION_KEYS, settings.KAMENG_BLIND_INDEX_KEY)
    cached = _cached
    if cached is not None and cached[0] == source:
        return cached[1]
    with _lock:
        built = parse_keyring(*source)
        _cached = (source, built)
        return built


def generate_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def encrypt_text(value: str, *, context: str) -> bytes:
    return keyring().encrypt(value.encode(), context=context.encode())


def decrypt_text(token: bytes, *, context: str) -> str:
    return keyring().decrypt(token, context=context.encode()).decode()


def blind_index(value: str, *, context: str) -> bytes:
    return keyring().fingerprint(value.encode(), context=context.encode())
