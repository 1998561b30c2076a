"""UnionPay 5.1.0 cryptography as UnionPay's side does it: a certificate authority of its own (root, intermediate,
the signing certificate it puts in `signPubKeyCert`, and the merchants' signing certificates), signing answers and
notifications, and checking a merchant's request by its certId.

Written on `cryptography` apart from kameng's adapter on purpose, so the tests check one implementation of the
protocol against another. Every key here is made at run time (demo setup or tests); none is ever committed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

KEY_BITS = 2048
# UnionPay writes the certificate's owner as the third "@" part of its CN; the rest identifies the certificate.
SIGNING_COMMON_NAME = "041@SIM@中国银联股份有限公司@00000001"
VALIDITY = timedelta(days=3650)


@dataclass(frozen=True)
class Issued:
    private_key_pem: str
    certificate_pem: str

    @property
    def serial_number(self) -> str:
        """The certificate's serial number in decimal: what UnionPay calls certId."""
        return str(x509.load_pem_x509_certificate(self.certificate_pem.encode()).serial_number)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kameng 模拟银联（仅供测试）"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _load_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def certificate_issue(*, common_name: str, issuer: Issued | None, is_authority: bool,
                      not_before: datetime | None = None, lifetime: timedelta = VALIDITY) -> Issued:
    """A new key and its certificate, signed by `issuer` (self-signed when None)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    subject = _name(common_name)
    if issuer is None:
        issuer_name, signing_key = subject, key
    else:
        issuer_name = x509.load_pem_x509_certificate(issuer.certificate_pem.encode()).subject
        signing_key = _load_key(issuer.private_key_pem)
    start = not_before or datetime.now(UTC) - timedelta(days=1)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
        .serial_number(secrets.randbits(63) | 1 << 62).not_valid_before(start).not_valid_after(start + lifetime)
        .add_extension(x509.BasicConstraints(ca=is_authority, path_length=None), critical=True)
        .sign(signing_key, hashes.SHA256()))
    return Issued(private_key_pem=_private_key_pem(key),
                  certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode())


@dataclass(frozen=True)
class Authority:
    root: Issued
    middle: Issued
    signing: Issued


def authority_create() -> Authority:
    """A root, an intermediate under it, and UnionPay's signing certificate under the intermediate."""
    root = certificate_issue(common_name="kameng 模拟银联根证书", issuer=None, is_authority=True)
    middle = certificate_issue(common_name="kameng 模拟银联中级证书", issuer=root, is_authority=True)
    signing = certificate_issue(common_name=SIGNING_COMMON_NAME, issuer=middle, is_authority=False)
    return Authority(root=root, middle=middle, signing=signing)


def signed_digest(params: dict[str, str]) -> bytes:
    """sha256 hex (lower case) of `k=v&…` over every field but `signature`, sorted by name."""
    text = "&".join(f"{key}={params[key]}" for key in sorted(params) if key != "signature")
    return hashlib.sha256(text.encode("utf-8")).hexdigest().encode("ascii")


def params_signed(params: dict[str, str], signing: Issued) -> dict[str, str]:
    """Add `signPubKeyCert` (it is signed too) and `signature` the way UnionPay's answers and notifications are.

    The certificate's lines end in CRLF: a browser posting the frontUrl form turns every line break into CRLF
    before sending, so only CRLF text arrives as it was signed."""
    pem = signing.certificate_pem.replace("\r\n", "\n").replace("\n", "\r\n")
    unsigned = {**params, "signPubKeyCert": pem}
    raw = _load_key(signing.private_key_pem).sign(signed_digest(unsigned), padding.PKCS1v15(), hashes.SHA256())
    return {**unsigned, "signature": base64.b64encode(raw).decode()}


def merchant_signature_is_valid(params: dict[str, str], certificate_pem: str) -> bool:
    key = x509.load_pem_x509_certificate(certificate_pem.encode()).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(base64.b64decode(params.get("signature", ""), validate=True), signed_digest(params),
                   padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def answer_text(params: dict[str, str]) -> str:
    """A server answer as UnionPay writes it: raw `k=v` joined by `&`, not URL-encoded."""
    return "&".join(f"{key}={value}" for key, value in params.items())
