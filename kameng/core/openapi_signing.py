"""The header signature of the Open API v1 (and of the notifications it sends and the docking connector's calls):

    X-Kameng-Signature = lowercase hex HMAC-SHA256(secret,
        METHOD + "\\n" + PATH_WITH_QUERY + "\\n" + TIMESTAMP + "\\n" + NONCE + "\\n" + lowercase hex SHA-256(body))

with X-Kameng-Key (the key id), X-Kameng-Timestamp (Unix seconds) and X-Kameng-Nonce (16–64 characters) beside it.
Pure functions: the verification rules (skew, nonce memory) belong to whoever receives.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

HEADER_KEY = "X-Kameng-Key"
HEADER_TIMESTAMP = "X-Kameng-Timestamp"
HEADER_NONCE = "X-Kameng-Nonce"
HEADER_SIGNATURE = "X-Kameng-Signature"
SKEW_SECONDS = 300


def openapi_signature(*, secret: str, method: str, path_with_query: str, timestamp: str, nonce: str,
                      body: bytes) -> str:
    text = "\n".join([method.upper(), path_with_query, timestamp, nonce, hashlib.sha256(body).hexdigest()])
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def openapi_signed_headers(*, key_id: str, secret: str, method: str, path_with_query: str, body: bytes,
                           now: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(16)
    return {HEADER_KEY: key_id, HEADER_TIMESTAMP: timestamp, HEADER_NONCE: nonce,
            HEADER_SIGNATURE: openapi_signature(secret=secret, method=method, path_with_query=path_with_query,
                                                timestamp=timestamp, nonce=nonce, body=body)}


def openapi_signature_matches(*, secret: str, method: str, path_with_query: str, headers: dict[str, str],
                              body: bytes, now: float | None = None) -> bool:
    """Whether signed headers (keys in any case) verify: signature right and timestamp within the skew. Nonces are
    the receiver's to remember."""
    lowered = {key.lower(): value for key, value in headers.items()}
    timestamp = lowered.get(HEADER_TIMESTAMP.lower(), "")
    nonce = lowered.get(HEADER_NONCE.lower(), "")
    signature = lowered.get(HEADER_SIGNATURE.lower(), "")
    if not (timestamp.isdigit() and 16 <= len(nonce) <= 64 and signature and secret):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > SKEW_SECONDS:
        return False
    expected = openapi_signature(secret=secret, method=method, path_with_query=path_with_query,
                                 timestamp=timestamp, nonce=nonce, body=body)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode("utf-8", "replace"))
