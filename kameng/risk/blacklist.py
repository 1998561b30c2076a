"""Blacklist values in their stored form: normalised where they are not personal (IP, CIDR, account id), a keyed
hash where they are (phone and ID number: the blind indexes kameng.accounts keeps, so a stored
`User.phone_index` or `RealName.id_number_index` matches; device: kameng.core.device.device_hash).

Both the admin (adding entries) and the engine (looking a request up) go through `blacklist_value`, so the two can
never disagree on a form.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from kameng.core.crypto import blind_index
from kameng.core.device import device_hash
from kameng.core.errors import ApplicationError
from kameng.core.http import address_block
from kameng.core.masking import mask_phone, mask_secret
from kameng.risk.models import BlacklistEntry, BlacklistKind

# The contexts of kameng.accounts' blind indexes (kameng.accounts.models.PHONE_CONTEXT and
# REAL_NAME_ID_NUMBER_CONTEXT; risk may not import accounts, tests/risk check that they are equal).
PHONE_INDEX_CONTEXT = "accounts.user.phone"
ID_NUMBER_INDEX_CONTEXT = "accounts.realname.id_number"
HEX_64_RE = re.compile(r"^[0-9a-f]{64}$")
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
ID_NUMBER_RE = re.compile(r"^\d{17}[\dX]$")


def phone_fingerprint(phone: str) -> str:
    return blind_index(phone.strip(), context=PHONE_INDEX_CONTEXT).hex()


def id_number_fingerprint(id_number: str) -> str:
    return blind_index("".join(id_number.split()).upper(), context=ID_NUMBER_INDEX_CONTEXT).hex()


def ip_value(address: str) -> str | None:
    """An address as blacklisted and looked up: IPv4 itself, IPv6 its /64 (None: not an address)."""
    try:
        ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    return address_block(address.strip())


def _invalid(message: str, text: str = "") -> ApplicationError:
    return ApplicationError(message, code="blacklist_invalid", params={"text": text[:60]} if text else None)


def _ip(text: str) -> tuple[str, str]:
    value = ip_value(text)
    if value is None:
        if "/" in text:  # a range typed under the single-address kind
            raise _invalid("「%(text)s」是 IP 段：请把类型选为「IP 段（CIDR）」", text)
        raise _invalid("「%(text)s」不是有效的 IP 地址", text)
    return value, value


def _cidr(text: str) -> tuple[str, str]:
    try:
        network = str(ipaddress.ip_network(text, strict=False))
    except ValueError as error:
        raise _invalid("「%(text)s」不是有效的 IP 段（如 10.0.0.0/8、2001:db8::/32）", text) from error
    return network, network


def _hashed_already(text: str) -> tuple[str, str] | None:
    """A 64-hex value is a fingerprint copied from a decision: kept as it is."""
    return (text.lower(), f"{text.lower()[:12]}…") if HEX_64_RE.match(text.lower()) else None


def _device(text: str) -> tuple[str, str]:
    value = text.lower() if HEX_64_RE.match(text.lower()) else device_hash(text)
    return value, f"{value[:12]}…"


def _phone(text: str) -> tuple[str, str]:
    hashed = _hashed_already(text)
    if hashed is not None:
        return hashed
    if not PHONE_RE.match(text):
        raise _invalid("「%(text)s」不是有效的手机号", mask_secret(text))
    return phone_fingerprint(text), mask_phone(text)


def _account(text: str) -> tuple[str, str]:
    if not text.isdigit() or not text.isascii():
        raise _invalid("账号请填写用户 ID（数字）")
    return str(int(text)), str(int(text))


def _id_number(text: str) -> tuple[str, str]:
    hashed = _hashed_already(text)
    if hashed is not None:
        return hashed
    number = "".join(text.split()).upper()
    if not ID_NUMBER_RE.match(number):
        raise _invalid("请填写 18 位身份证号码（或其 64 位指纹）")
    return id_number_fingerprint(number), number[:3] + "*" * 11 + number[-4:]


_NORMALISERS = {BlacklistKind.IP: _ip, BlacklistKind.CIDR: _cidr, BlacklistKind.DEVICE: _device,
                BlacklistKind.PHONE: _phone, BlacklistKind.ACCOUNT: _account,
                BlacklistKind.ID_FINGERPRINT: _id_number}


def blacklist_value(*, kind: str, text: str) -> tuple[str, str]:
    """(stored value, what staff see) for what staff typed; ApplicationError(400) saying what is wrong. A device,
    phone or ID may also be given as the 64-hex fingerprint a decision shows."""
    normaliser = _NORMALISERS.get(BlacklistKind(kind)) if kind in BlacklistKind.values else None
    if normaliser is None:
        raise _invalid("未知的黑名单类型")
    return normaliser(text.strip())


def blacklist_add(*, kind: str, text: str, reason: str = "", expires_at: datetime | None = None,
                  staff_id: int | None = None) -> BlacklistEntry:
    """Add (or renew, with the new reason and expiry) one entry."""
    value, shown = blacklist_value(kind=kind, text=text)
    entry, _created = BlacklistEntry.objects.update_or_create(
        kind=kind, value=value, defaults={"shown": shown, "reason": reason[:200], "expires_at": expires_at},
        create_defaults={"shown": shown, "reason": reason[:200], "expires_at": expires_at, "created_by_id": staff_id})
    return entry  # saved through BlacklistEntry.save(): a CIDR range publishes the new rules version


def blacklist_match(candidates: list[tuple[str, str]]) -> BlacklistEntry | None:
    """The first unexpired entry among (kind, value) pairs, in one query (None when there are none)."""
    if not candidates:
        return None
    condition = Q()
    for kind, value in candidates:
        condition |= Q(kind=kind, value=value)
    return (BlacklistEntry.objects.filter(condition)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())).order_by("id").first())
