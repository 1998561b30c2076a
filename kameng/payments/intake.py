"""What the notification endpoint lets in, and how much of it is kept.

Anyone can post to /pay/notify/<channel>/, so nothing it receives may cost us more than a few KB:

- A body or query larger than KAMENG_NOTIFY_MAX_BYTES is refused before it is read or parsed (413): real
  notifications are a few KB (Alipay's, the largest, stays under 4 KB).
- What is stored of a notification (PaymentNotification.params) is bounded in the number of parameters, the
  length of each name and value, and in total, whatever was sent.
- A client address whose notifications were refused KAMENG_NOTIFY_REJECTIONS_PER_ADDRESS times within a minute
  is answered 429 without a row or a risk event until the minute is over. Only refusals count: a gateway whose
  notifications verify is never slowed down, however many orders a sale brings. IPv6 is counted per /64.
- Notifications naming no channel of ours write at most UNKNOWN_CHANNEL_ROWS_PER_MINUTE rows in all (from every
  address together); past that they are answered 404 and only logged.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from kameng.core.counters import counter_hit
from kameng.core.http import address_block
from kameng.core.masking import mask_text

RATE_WINDOW_SECONDS = 60
UNKNOWN_CHANNEL_ROWS_PER_MINUTE = 30
MAX_STORED_PARAMS = 60
MAX_STORED_NAME = 64
MAX_STORED_VALUE = 500
MAX_STORED_TOTAL = 8 * 1024
SECRET_PARAMS = frozenset({"sign", "key", "signature", "wechatpay-signature"})
DROPPED_KEY = "…"
NUL = "\x00"
UNKNOWN_CHANNEL_KEY = "payments:notify-unknown-channel"


def notification_is_too_large(*, content_length: str, query_string: str) -> bool:
    """Whether a request is over the limit, judged from its headers alone (nothing read yet)."""
    limit = settings.KAMENG_NOTIFY_MAX_BYTES
    try:
        declared = int(content_length or 0)
    except ValueError:
        return True  # a Content-Length that is not a number: no gateway sends that
    return declared > limit or len(query_string) > limit


def storable(text: str) -> str:
    """PostgreSQL text and jsonb cannot hold a NUL character: keep the evidence, escaped as the four characters
    `\\x00` (a gateway never sends one, so the escape cannot be mistaken for something it sent)."""
    return text.replace(NUL, "\\x00")


def notification_params_stored(params: dict[str, str]) -> dict[str, str]:
    """The parameters as kept on the notification row: signatures masked, secrets inside values masked, every
    name and value cut short, and no more than MAX_STORED_TOTAL characters in all. What did not fit is counted
    under the key "…"."""
    stored: dict[str, str] = {}
    total = 0
    for key, value in params.items():
        name = storable(str(key))[:MAX_STORED_NAME]
        kept = "***" if str(key).lower() in SECRET_PARAMS else storable(mask_text(str(value)[:MAX_STORED_VALUE]))
        kept = kept[:MAX_STORED_VALUE]
        if len(stored) >= MAX_STORED_PARAMS or total + len(name) + len(kept) > MAX_STORED_TOTAL or name in stored:
            continue
        stored[name] = kept
        total += len(name) + len(kept)
    dropped = len(params) - len(stored)
    if dropped:
        stored[DROPPED_KEY] = f"另有 {dropped} 个参数过长或过多，未保存"
    return stored


def _address_key(address: str) -> str:
    return f"payments:notify-refused:{address_block(address)}"


def notification_address_is_throttled(*, remote_addr: str | None) -> bool:
    if not remote_addr:
        return False
    return int(cache.get(_address_key(remote_addr)) or 0) >= settings.KAMENG_NOTIFY_REJECTIONS_PER_ADDRESS


def notification_refused_from(*, remote_addr: str | None) -> None:
    """Count one refused notification against its client address."""
    if remote_addr:
        counter_hit(key=_address_key(remote_addr), window=RATE_WINDOW_SECONDS)


def unknown_channel_row_allowed() -> bool:
    """Whether one more row may be written for a notification naming no channel (counted across all addresses)."""
    return counter_hit(key=UNKNOWN_CHANNEL_KEY, window=RATE_WINDOW_SECONDS) <= UNKNOWN_CHANNEL_ROWS_PER_MINUTE
