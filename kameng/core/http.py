"""The client's address, as seen through the reverse proxies the operator trusts."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """REMOTE_ADDR, unless it is a trusted proxy (KAMENG_TRUSTED_PROXIES, by default the loopback addresses of an
    nginx on the same host): then the right-most X-Forwarded-For address that is not a trusted proxy — the left
    part of that header is whatever the client chose to send and proves nothing."""
    remote = str(request.META.get("REMOTE_ADDR", ""))
    trusted = settings.KAMENG_TRUSTED_PROXIES
    if remote not in trusted:
        return remote
    forwarded = [part.strip() for part in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    for address in reversed(forwarded):
        if address and address not in trusted:
            return address[:45]  # the longest textual IPv6 address
    return remote


def address_block(address: str) -> str:
    """What a per-address limit counts: IPv4 per address; IPv6 per /64, the block one subscriber gets (counting
    single addresses would give anyone with a /64 an unlimited budget)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:45]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
