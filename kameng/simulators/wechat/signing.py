"""WeChat Pay API v3 cryptography as WeChat's side does it (PROTOCOLS.md §3): checking a merchant's
`Authorization` header, signing replies and notifications with the platform key, encrypting notification resources.

Written straight on `cryptography` and apart from kameng's adapter on purpose: the tests then check one
implementation of the protocol against another.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
AUTHORIZATION_PARAM = re.compile(r'(\w+)="([^"]*)"')
AUTHORIZATION_FIELDS = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
# WeChat refuses requests whose timestamp is more than five minutes away from its clock.
REQUEST_CLOCK_SKEW_SECONDS = 300
ALPHANUMERIC = string.ascii_letters + string.digits


@dataclass(frozen=True)
class KeyPair:
    private_key_pem: str
    public_key_pem: str


def key_pair_generate() -> KeyPair:
    """A 2048-bit RSA key pair as PEM text (PKCS#8 private key, SubjectPublicKeyInfo public key)."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode()
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return KeyPair(private_key_pem=private_pem, public_key_pem=public_pem)


def certificate_serial_no_new() -> str:
    """A merchant API certificate serial number: 40 upper-case hex digits, like WeChat's."""
    return secrets.token_hex(20).upper()


def public_key_id_new() -> str:
    return "PUB_KEY_ID_01" + "".join(secrets.choice(string.digits) for _ in range(30))


def random_text(length: int = 32) -> str:
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


def rsa_sign(private_key_pem: str, message: bytes) -> str:
    private_key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    assert isinstance(private_key, rsa.RSAPrivateKey)
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def is_rsa_signature_valid(public_key_pem: str, message: bytes, signature: str) -> bool:
    public_key = serialization.load_pem_public_key(public_key_pem.encode())
    assert isinstance(public_key, rsa.RSAPublicKey)
    try:
        public_key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def request_message(*, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What a merchant signs: method, path with query, timestamp, nonce and body, each line ending in \\n."""
    return f"{method}\n{path}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def authorization_parse(header: str) -> dict[str, str] | None:
    """The fields of `WECHATPAY2-SHA256-RSA2048 mchid="…",…`, or None if the header is not one."""
    scheme, _, rest = header.partition(" ")
    if scheme != SIGNATURE_TYPE:
        return None
    fields = dict(AUTHORIZATION_PARAM.findall(rest))
    if any(not fields.get(name) for name in AUTHORIZATION_FIELDS):
        return None
    return fields


def signed_message_headers(*, platform_private_key_pem: str, platform_key_id: str, body: bytes,
                           timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """The Wechatpay-* headers of a reply or a notification: SHA256withRSA over `timestamp\\nnonce\\nbody\\n`."""
    timestamp_text = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or random_text()
    message = f"{timestamp_text}\n{nonce}\n".encode() + body + b"\n"
    return {
        "Wechatpay-Timestamp": timestamp_text,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": rsa_sign(platform_private_key_pem, message),
        "Wechatpay-Serial": platform_key_id,
        "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        "Request-ID": random_text(24),
    }


def resource_encrypt(*, api_v3_key: str, plaintext: dict[str, Any], associated_data: str = "transaction",
                     original_type: str = "transaction") -> dict[str, str]:
    """AEAD_AES_256_GCM: key = the APIv3 key's 32 bytes, a 12-character nonce, the tag appended to the ciphertext."""
    nonce = random_text(12)
    data = json.dumps(plaintext, ensure_ascii=False, separators=(",", ":")).encode()
    ciphertext = AESGCM(api_v3_key.encode()).encrypt(nonce.encode(), data, associated_data.encode())
    return {"original_type": original_type, "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(ciphertext).decode(), "associated_data": associated_data, "nonce": nonce}
