"""The Open API v1 signature: what is signed and how, in one place (the verifier in kameng.openapi, the
callbacks to notify_url, the tests).

    X-Kameng-Signature = lowercase hex HMAC-SHA256(secret,
        METHOD + "\n" + PATH_WITH_QUERY + "\n" + TIMESTAMP + "\n" + NONCE + "\n" + lowercase hex SHA-256(raw body))

METHOD is upper case, PATH_WITH_QUERY the request target as sent (`/openapi/v1/orders?request_no=A1`), TIMESTAMP
the unix seconds of X-Kameng-Timestamp as sent, NONCE X-Kameng-Nonce; an empty body hashes the empty string.
Standard library only: examples/openapi_client.py carries the same few lines, and a test checks the two agree.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER_KEY = "X-Kameng-Key"
HEADER_TIMESTAMP = "X-Kameng-Timestamp"
HEADER_NONCE = "X-Kameng-Nonce"
HEADER_SIGNATURE = "X-Kameng-Signature"


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def string_to_sign(*, method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    return "\n".join((method.upper(), path_with_query, timestamp, nonce, body_sha256(body)))


def signature(*, secret: str, method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = string_to_sign(method=method, path_with_query=path_with_query, timestamp=timestamp, nonce=nonce,
                             body=body)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signature_matches(given: str, expected: str) -> bool:
    """Constant time, whatever `given` holds (compared as bytes: a non-ASCII header must not raise)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def signed_headers(*, key_id: str, secret: str, method: str, path_with_query: str, body: bytes, timestamp: int,
                   nonce: str) -> dict[str, str]:
    """The four headers of a signed request (used by the callbacks we send and by tests)."""
    stamp = str(timestamp)
    return {HEADER_KEY: key_id, HEADER_TIMESTAMP: stamp, HEADER_NONCE: nonce,
            HEADER_SIGNATURE: signature(secret=secret, method=method, path_with_query=path_with_query,
                                        timestamp=stamp, nonce=nonce, body=body)}
