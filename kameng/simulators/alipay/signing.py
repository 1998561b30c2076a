"""The simulated Alipay's own RSA2 code, written apart from the adapter (which uses python-alipay-sdk) so that each
side checks the other: SHA256withRSA, PKCS#1 v1.5 padding, base64, over the sorted raw `k=v&k=v` string.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_BITS = 2048


@dataclass(frozen=True)
class KeyPair:
    private_key: str  # PKCS#8 PEM
    public_key: str  # SubjectPublicKeyInfo PEM


def key_pair_generate() -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return KeyPair(private_key=private_pem.decode(), public_key=public_pem.decode())


def public_key_of(private_key: str) -> str:
    """The public half of a PEM private key (the demo seeds an app for a channel that already has its key)."""
    key = serialization.load_pem_private_key(private_key.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def is_public_key_valid(public_key: str) -> bool:
    try:
        return isinstance(_public_key(public_key), rsa.RSAPublicKey)
    except ValueError:
        return False


def _public_key(text: str) -> rsa.RSAPublicKey:
    text = text.strip()
    if not text.startswith("-----BEGIN"):
        try:
            loaded = serialization.load_der_public_key(base64.b64decode(text))
        except (binascii.Error, ValueError) as error:
            raise ValueError("not a public key") from error
    else:
        loaded = serialization.load_pem_public_key(text.encode())
    if not isinstance(loaded, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return loaded


def canonical(params: dict[str, str], *, excluded: tuple[str, ...]) -> str:
    """Sorted `k=v` pairs joined by `&`, raw (not URL-encoded), blanks and `excluded` keys left out."""
    return "&".join(f"{key}={value}" for key, value in sorted(params.items())
                    if key not in excluded and value != "")


def rsa2_sign(content: str, private_key: str) -> str:
    key = serialization.load_pem_private_key(private_key.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return base64.b64encode(key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa2_verify(content: str, signature: str, public_key: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        _public_key(public_key).verify(raw, content.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def request_signature_valid(params: dict[str, str], public_key: str) -> bool:
    """An app's request: everything but `sign` and blanks is signed — `sign_type` included (unlike notifications)."""
    return rsa2_verify(canonical(params, excluded=("sign",)), params.get("sign", ""), public_key)


def notification_signed(params: dict[str, str], private_key: str) -> dict[str, str]:
    """A notification (or return) signed the way Alipay does: over everything but `sign` and `sign_type`."""
    unsigned = {**params, "sign_type": "RSA2"}
    return {**unsigned, "sign": rsa2_sign(canonical(unsigned, excluded=("sign", "sign_type")), private_key)}
