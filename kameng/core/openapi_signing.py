"""The header signature of the Open API v1, in one place: the verifier (kameng.openapi.auth), the notifications it
sends (kameng.resellers.notify), the docking connector's calls (kameng.suppliers.connectors.kameng) and the tests.

    X-Kameng-Signature = lowercase hex HMAC-SHA256(secret,
        METHOD + "\\n" + PATH_WITH_QUERY + "\\n" + TIMESTAMP + "\\n" + NONCE + "\\n" + lowercase hex SHA-256(body))

with X-Kameng-Key (the key id), X-Kameng-Timestamp (Unix seconds) and X-Kameng-Nonce (16–64 characters) beside it.
METHOD is upper case, PATH_WITH_QUERY the request target as sent (`/openapi/v1/orders?request_no=A1`), TIMESTAMP and
NONCE the header values as sent; an empty body hashes the empty string. Pure functions, standard library only
(examples/openapi_client.py carries the same few lines, and a test checks the two agree): the verification rules
beyond the skew (nonce memory, keys, allow-lists) belong to whoever receives.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

HEADER_KEY = "X-Kameng-Key"
HEADER_TIMESTAMP = "X-Kameng-Timestamp"
HEADER_NONCE = "X-Kameng-Nonce"
HEADER_SIGNATURE = "X-Kameng-Signature"
SKEW_SECONDS = 300


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def string_to_sign(*, method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    return "\n".join((method.upper(), path_with_query, timestamp, nonce, body_sha256(body)))


def openapi_signature(*, secret: str, method: str, path_with_query: str, timestamp: str, nonce: str,
                      body: bytes) -> str:
    text = string_to_sign(method=method, path_with_query=path_with_query, timestamp=timestamp, nonce=nonce,
                          body=body)
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def signature_equal(given: str, expected: str) -> bool:
    """Constant time, whatever `given` holds (compared as bytes: a non-ASCII header must not raise)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def openapi_signed_headers(*, key_id: str, secret: str, method: str, path_with_query: str, body: bytes,
                           now: float | None = None, timestamp: int | None = None,
                           nonce: str | None = None) -> dict[str, str]:
    """The four headers of a signed request: the timestamp `timestamp` (else `now`, else the clock), the nonce
    `nonce` (else 32 random hex characters)."""
    stamp = str(timestamp if timestamp is not None else int(time.time() if now is None else now))
    nonce = nonce if nonce is not None else secrets.token_hex(16)
    return {HEADER_KEY: key_id, HEADER_TIMESTAMP: stamp, HEADER_NONCE: nonce,
            HEADER_SIGNATURE: openapi_signature(secret=secret, method=method, path_with_query=path_with_query,
                                                timestamp=stamp, nonce=nonce, body=body)}


def openapi_signature_matches(*, secret: str, method: str, path_with_query: str, headers: Mapping[str, str],
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
    return signature_equal(signature.strip().lower(), expected)
