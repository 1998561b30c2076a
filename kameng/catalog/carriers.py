"""Which carrier (运营商) a mainland China mobile number belongs to, by its number segment (号段).

The table is public knowledge: the segments the Ministry of Industry and Information Technology (工信部) allocated
to 中国移动, 中国联通, 中国电信 and 中国广电, as carriers and the numbering plan publish them (as of 2024), including
the virtual-operator (虚拟运营商, MVNO) segments 162/165/167/170/171, each riding on one carrier's network (170
is split by its fourth digit). A number keeps its segment's carrier unless it was ported (携号转网): such a number
answers its old carrier here, which is the best any segment table can do; an upstream refuses it if it cares.

A segment is matched longest-prefix first (1349 before 134, 1700 before 170). Update the table as new segments
are allocated; nothing else reads the numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MOBILE = "移动"
UNICOM = "联通"
TELECOM = "电信"
BROADNET = "广电"
CARRIERS: tuple[str, ...] = (MOBILE, UNICOM, TELECOM, BROADNET)
# What the buyer reads: "中国移动".
CARRIER_NAMES: dict[str, str] = {carrier: f"中国{carrier}" for carrier in CARRIERS}

# Prefix → carrier. Three digits for most segments; four where a segment is shared.
SEGMENTS: dict[str, str] = {
    # 中国移动
    **dict.fromkeys(["134", "135", "136", "137", "138", "139", "147", "148", "150", "151", "152", "157", "158",
                     "159", "172", "178", "182", "183", "184", "187", "188", "195", "197", "198"], MOBILE),
    # 中国联通
    **dict.fromkeys(["130", "131", "132", "145", "146", "155", "156", "166", "175", "176", "185", "186",
                     "196"], UNICOM),
    # 中国电信 (1349: the satellite segment inside 134; 1740x: satellite too)
    **dict.fromkeys(["133", "1349", "149", "153", "173", "1740", "177", "180", "181", "189", "190", "191", "193",
                     "199"], TELECOM),
    # 中国广电
    "192": BROADNET,
    # 虚拟运营商 (MVNO), by the network they ride on
    **dict.fromkeys(["1700", "1701", "1702", "162"], TELECOM),
    **dict.fromkeys(["1703", "1705", "1706", "165"], MOBILE),
    **dict.fromkeys(["1704", "1707", "1708", "1709", "171", "167"], UNICOM),
}
VIRTUAL_SEGMENTS: frozenset[str] = frozenset({"162", "165", "167", "170", "171"})

MOBILE_NUMBER = re.compile(r"1[3-9]\d{9}")
_SEPARATORS = re.compile(r"[\s\-()（）]")


@dataclass(frozen=True)
class CarrierInfo:
    carrier: str  # one of CARRIERS
    is_virtual: bool  # a virtual operator's number (162/165/167/170/171) on that carrier's network

    @property
    def name(self) -> str:
        return CARRIER_NAMES[self.carrier]


def phone_normalize(value: str) -> str:
    """The number as 11 digits: spaces, dashes and brackets dropped, a +86 / 0086 / 86 country code too. The result
    may still be malformed: check it with `MOBILE_NUMBER`."""
    digits = _SEPARATORS.sub("", value.strip())
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            return digits[len(prefix):]
    return digits


def carrier_of(number: str) -> CarrierInfo | None:
    """The carrier of an 11-digit mainland mobile number, or None when its segment is not in the table (not
    allocated, or a data-only / IoT segment)."""
    if not MOBILE_NUMBER.fullmatch(number):
        return None
    for length in (4, 3):
        carrier = SEGMENTS.get(number[:length])
        if carrier is not None:
            return CarrierInfo(carrier=carrier, is_virtual=number[:3] in VIRTUAL_SEGMENTS)
    return None
