"""Certificates and signatures for the UnionPay tests, made here with `cryptography` alone (neither the adapter's
code nor the simulator's): a root and intermediate as UnionPay's, its signing certificate, merchant keys, and
strangers' certificates for the negative cases. Every key is generated when the tests run."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

UNIONPAY_SIGNING_CN = "041@Z12@中国银联股份有限公司@00000001"


@dataclass(frozen=True)
class Cert:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()


def issue(common_name: str, issuer: Cert | None = None, *, is_authority: bool = False,
          not_before: datetime | None = None, days: int = 365) -> Cert:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = not_before or datetime.now(UTC) - timedelta(days=1)
    certificate = (
        x509.CertificateBuilder().subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject).public_key(key.public_key())
        .serial_number(secrets.randbits(60) | 1 << 59).not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_authority, path_length=None), critical=True)
        .sign(issuer.key if issuer else key, hashes.SHA256()))
    return Cert(key=key, certificate=certificate)


@dataclass(frozen=True)
class UnionPayKeys:
    root: Cert
    middle: Cert
    signing: Cert
    merchant: Cert
    # Negative cases: a whole other authority, a certificate of the right chain with another owner, an expired one.
    stranger_signing: Cert
    wrong_owner: Cert
    expired: Cert
    test_environment: Cert

    @property
    def trust_bundle(self) -> str:
        return self.root.pem + self.middle.pem


def unionpay_keys() -> UnionPayKeys:
    root = issue("Test Root", is_authority=True)
    middle = issue("Test Middle", root, is_authority=True)
    stranger_root = issue("Test Root", is_authority=True)  # same name, other key: must not be taken for ours
    stranger_middle = issue("Test Middle", stranger_root, is_authority=True)
    return UnionPayKeys(
        root=root, middle=middle, signing=issue(UNIONPAY_SIGNING_CN, middle),
        merchant=issue("041@Z12@演示商户@1", middle),
        stranger_signing=issue(UNIONPAY_SIGNING_CN, stranger_middle),
        wrong_owner=issue("041@Z12@某某支付有限公司@00000001", middle),
        expired=issue(UNIONPAY_SIGNING_CN, middle, not_before=datetime.now(UTC) - timedelta(days=400), days=365),
        test_environment=issue("041@Z12@00040000:SIGN@00000001", middle),
    )


def sign_as_unionpay(params: dict[str, str], cert: Cert) -> dict[str, str]:
    """Fields signed as the 5.1.0 documents describe: signPubKeyCert added, then every field but `signature`
    sorted and joined `k=v&…`, its SHA-256 hex signed SHA256withRSA, base64."""
    unsigned = {**params, "signPubKeyCert": cert.pem}
    text = "&".join(f"{key}={unsigned[key]}" for key in sorted(unsigned))
    digest = hashlib.sha256(text.encode()).hexdigest().encode()
    signature = cert.key.sign(digest, padding.PKCS1v15(), hashes.SHA256())
    return {**unsigned, "signature": base64.b64encode(signature).decode()}
