"""Outbound requests to addresses someone else chose (a reseller's notify_url): refused when they point inside.

`url_target_check` parses the URL, resolves its host ONCE and refuses, unless private targets are allowed (the
demo, DEBUG, some tests: settings.KAMENG_NOTIFY_ALLOW_PRIVATE):

- a scheme other than https (http is accepted only when private targets are allowed);
- user info in the URL (`https://user@host/`), a missing host, a port out of range;
- `localhost` and any name under `.localhost` (RFC 6761: always the machine itself);
- a host written as a non-canonical IPv4 number (`2130706433`, `0177.0.0.1`, `0x7f.1`: the C resolver reads them
  as addresses, a reader does not);
- any resolved address that is loopback, private, link-local, multicast, reserved, unspecified (0.0.0.0, ::),
  shared (100.64/10) or otherwise not global — IPv4-mapped (::ffff:a.b.c.d), 6to4, Teredo and NAT64 (64:ff9b::/96)
  IPv6 addresses are judged by the IPv4 address they carry. A host with one bad address among good ones is
  refused whole (whichever the client picked could be the bad one).

`safe_post` then connects to the address that was checked — the URL's host replaced by that IP, the `Host` header
and the TLS SNI (and so the certificate check) set to the original name — so a DNS answer that changes between
the check and the connection (DNS rebinding) changes nothing. No redirect is followed; the timeout is short.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from kameng.core.errors import ApplicationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[tuple[Any, ...]]]

NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
DEFAULT_PORTS = {"https": 443, "http": 80}
# A host made only of digits, dots and hex/octal prefixes: an IPv4 number in one of the C library's spellings.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)

# How names are resolved; tests replace it (socket.getaddrinfo's signature).
resolve: Resolver = socket.getaddrinfo
# The httpx transport outbound posts go through; None means the network. Tests put an httpx.MockTransport here.
outbound_transport: httpx.BaseTransport | None = None


class UnsafeUrlError(ApplicationError):
    """The URL may not be called: the message says why (shown to the reseller in the delivery log)."""


@dataclass(frozen=True)
class CheckedTarget:
    url: str
    scheme: str
    host: str  # as written in the URL (lowercase, no brackets)
    port: int
    address: str  # the checked IP the connection goes to
    path_with_query: str

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == DEFAULT_PORTS[self.scheme] else f"{name}:{self.port}"

    @property
    def pinned_url(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{address}:{self.port}{self.path_with_query}"


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo's client, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: IPAddress) -> bool:
    inner = embedded_ipv4(address)
    if inner is not None and not is_public_address(inner):
        return False
    # `is_global` alone lets multicast through (224.0.0.0/4 is "global" to the ipaddress module).
    return not (address.is_loopback or address.is_private or address.is_link_local or address.is_multicast
                or address.is_reserved or address.is_unspecified or not address.is_global
                or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local))


def url_target_check(url: str, *, allow_private: bool | None = None) -> CheckedTarget:
    """The URL's target, resolved and checked; UnsafeUrlError when it may not be called."""
    if allow_private is None:
        allow_private = bool(settings.KAMENG_NOTIFY_ALLOW_PRIVATE)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:  # urllib says why in English: the port, or the brackets of an IPv6 address
        reason = "端口号须为 1–65535 的整数" if "port" in str(error).lower() else "主机名或 IPv6 地址写法有误"
        raise UnsafeUrlError("回调地址无效：%(reason)s", code="url_invalid", params={"reason": reason}) from error
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow_private and scheme == "http"):
        raise UnsafeUrlError("回调地址必须以 https:// 开头", code="url_not_https")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrlError("回调地址不能包含用户名或密码", code="url_has_credentials")
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeUrlError("回调地址缺少主机名", code="url_invalid")
    port = port or DEFAULT_PORTS[scheme]
    if not allow_private and (host.rstrip(".") == "localhost" or host.rstrip(".").endswith(".localhost")):
        raise UnsafeUrlError("回调地址指向本机（%(host)s），不允许回调", code="url_private_target",
                             params={"host": host})
    literal = _ip_literal(host)
    if literal is None and _NUMERIC_HOST.match(host):
        raise UnsafeUrlError("回调地址的主机名是非标准写法的 IP 地址，请使用域名", code="url_numeric_host")
    addresses = [literal] if literal is not None else _resolved(host, port)
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise UnsafeUrlError("回调地址指向内网、本机或保留地址（%(address)s），不允许回调",
                                     code="url_private_target", params={"address": str(address)})
    path = parts.path or "/"
    return CheckedTarget(url=url, scheme=scheme, host=host, port=port, address=str(addresses[0]),
                         path_with_query=path + (f"?{parts.query}" if parts.query else ""))


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0] if ":" in host else host)
    except ValueError:
        return None


def _resolved(host: str, port: int) -> list[IPAddress]:
    try:
        answers = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise UnsafeUrlError("回调地址的域名无法解析（%(host)s）", code="url_unresolvable",
                             params={"host": host}) from error
    addresses: list[IPAddress] = []
    for answer in answers:
        text = str(answer[4][0]).split("%", 1)[0]
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeUrlError("回调地址的域名无法解析（%(host)s）", code="url_unresolvable", params={"host": host})
    return addresses


def safe_post(target: CheckedTarget, *, content: bytes, headers: Mapping[str, str],
              timeout: float = 5.0) -> httpx.Response:
    """POST to a checked target's address (never re-resolved), redirects not followed. httpx errors propagate."""
    request_headers = {**headers, "Host": target.host_header}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    with httpx.Client(transport=outbound_transport, timeout=timeout, follow_redirects=False,
                      trust_env=False) as client:
        request = client.build_request("POST", target.pinned_url, content=content, headers=request_headers,
                                       extensions=extensions)
        return client.send(request)
