"""易支付 V1 signing as the gateway computes it, written apart from `kameng.payments.gateways.epay` on purpose.

The simulator plays the other side of the protocol: if our payments code and this module ever disagree on the
canonical string, the end-to-end tests fail instead of both halves agreeing on the same mistake.

Rule (PROTOCOLS.md §1): drop `sign`, `sign_type`, non-string (array) and blank values; sort the remaining keys
by byte order; join the raw, un-encoded `key=value` pairs with `&`; append the merchant key with no separator;
MD5 of the UTF-8 bytes as 32 lowercase hex digits.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

EXCLUDED_KEYS = frozenset({"sign", "sign_type"})


def canonical_string(params: Mapping[str, object]) -> str:
    """The string the signature covers, e.g. `money=1.00&name=测试&out_trade_no=X&pid=1001&type=alipay`."""
    kept = {key: value for key, value in params.items()
            if key not in EXCLUDED_KEYS and isinstance(value, str) and value != ""}
    # Byte order of the UTF-8 key, which is what PHP's ksort() gives for the ASCII names the protocol uses.
    ordered_keys = sorted(kept, key=lambda key: key.encode())
    return "&".join(key + "=" + kept[key] for key in ordered_keys)


def md5_signature(params: Mapping[str, object], merchant_key: str) -> str:
    digest = hashlib.md5()  # noqa: S324 - MD5 is what epay V1 specifies; the simulator must speak it
    digest.update(canonical_string(params).encode("utf-8"))
    digest.update(merchant_key.encode("utf-8"))
    return digest.hexdigest()


def is_signature_valid(params: Mapping[str, object], merchant_key: str) -> bool:
    """Check `params["sign"]` in constant time; an absent or non-MD5 signature is never valid."""
    received = params.get("sign")
    if not isinstance(received, str) or not received:
        return False
    sign_type = params.get("sign_type") or "MD5"
    if not isinstance(sign_type, str) or sign_type.upper() != "MD5":
        return False
    return hmac.compare_digest(received.lower().encode(), md5_signature(params, merchant_key).encode())


def with_signature(params: Mapping[str, str], merchant_key: str) -> dict[str, str]:
    """`params` plus `sign` and `sign_type=MD5`, ready to send."""
    return {**params, "sign": md5_signature(params, merchant_key), "sign_type": "MD5"}
