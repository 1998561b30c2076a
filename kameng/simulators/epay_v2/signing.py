"""易支付 V2 RSA signing as the gateway computes it, written apart from `kameng.payments.gateways.epay_v2` on
purpose: if the two ever disagree, the end-to-end tests fail instead of both halves sharing one mistake.

Rule (PROTOCOLS.md §1): the V1 canonical string — drop `sign`, `sign_type`, arrays and blank values, sort the
keys by byte order, join the raw `key=value` pairs with `&` — signed SHA256withRSA (PKCS#1 v1.5), base64. Integers
(the `code` of a JSON reply) are written as their digits, as PHP's string concatenation does. Keys travel as the
bare base64 of their DER encoding: PKCS#8 for private keys, SubjectPublicKeyInfo for public ones.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

EXCLUDED_KEYS = frozenset({"sign", "sign_type"})
KEY_SIZE_BITS = 2048
V = TypeVar("V")


@dataclass(frozen=True)
class KeyPair:
    private_key: str  # bare base64 of PKCS#8 DER
    public_key: str  # bare base64 of SubjectPublicKeyInfo DER


def key_pair_generate() -> KeyPair:
    """A fresh 2048-bit RSA key pair, both halves as bare base64 (what 易支付 V2 consoles show)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE_BITS)
    private_der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    public_der = private.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return KeyPair(private_key=base64.b64encode(private_der).decode(), public_key=base64.b64encode(public_der).decode())


def _strip_pem(text: str) -> bytes:
    lines = [line for line in text.strip().splitlines() if not line.startswith("-----")]
    return base64.b64decode("".join("".join(lines).split()), validate=True)


def _private_key(text: str) -> rsa.RSAPrivateKey:
    key = serialization.load_der_private_key(_strip_pem(text), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def _public_key(text: str) -> rsa.RSAPublicKey:
    key = serialization.load_der_public_key(_strip_pem(text))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def canonical_string(params: Mapping[str, object]) -> str:
    """The string the signature covers, e.g. `money=1.00&name=测试&out_trade_no=X&pid=1001&timestamp=…`."""
    kept: dict[str, str] = {}
    for key, value in params.items():
        if key in EXCLUDED_KEYS:
            continue
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if isinstance(text, str) and text != "":
            kept[key] = text
    return "&".join(key + "=" + kept[key] for key in sorted(kept, key=lambda key: key.encode()))


def rsa_signature(params: Mapping[str, object], private_key: str) -> str:
    signature = _private_key(private_key).sign(canonical_string(params).encode("utf-8"), padding.PKCS1v15(),
                                               hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def is_signature_valid(params: Mapping[str, object], public_key: str) -> bool:
    """Check `params["sign"]`; an absent signature, another sign_type or an unreadable key is never valid."""
    received = params.get("sign")
    sign_type = params.get("sign_type") or "RSA"
    if not isinstance(received, str) or not received or not isinstance(sign_type, str) or sign_type != "RSA":
        return False
    try:
        _public_key(public_key).verify(base64.b64decode(received, validate=True),
                                       canonical_string(params).encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def with_signature(params: Mapping[str, V], private_key: str) -> dict[str, V | str]:
    """`params` plus `sign` and `sign_type=RSA`, ready to send."""
    return {**params, "sign": rsa_signature(params, private_key), "sign_type": "RSA"}
