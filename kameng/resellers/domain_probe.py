"""Looking for a sub-site's domain verification token out on the internet: a DNS TXT record
`_kameng-verify.<domain>`, or a file at `http://<domain>/.well-known/kameng-verify.txt`.

Both are seams the tests replace (`TXT_RESOLVER`, `FILE_FETCHER`). The file is fetched with care, since the
domain is whatever a reseller typed (SSRF): the name is resolved once, every address it resolves to must be a
public one (no loopback, private, link-local, reserved or multicast address, unless
`KAMENG_SUBSITE_VERIFY_ALLOW_PRIVATE`, for a local demo), and the request goes to that vetted address with the
domain in the Host header (a second resolution could answer differently: DNS rebinding). No redirect is
followed, at most `MAX_FILE_BYTES` are read, and the whole fetch has a short timeout. Neither probe is ever called
inside a database transaction.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
import socket
from collections.abc import Callable

import httpx
from django.conf import settings

logger = logging.getLogger(__name__)

TXT_PREFIX = "_kameng-verify."
FILE_PATH = "/.well-known/kameng-verify.txt"
MAX_FILE_BYTES = 1024
TIMEOUT_SECONDS = 5.0


class ProbeError(Exception):
    """The probe could not look (the name does not resolve, a private address, a timeout); the message is for
    the reseller, in Chinese."""


def dns_txt_records(name: str) -> list[str]:
    """The TXT strings published at `name` (dnspython); [] if there are none."""
    try:
        resolver_module = importlib.import_module("dns.resolver")
        exception_module = importlib.import_module("dns.exception")
    except ImportError as error:  # dnspython is in requirements.in
        raise ProbeError("服务器未安装 DNS 查询组件，暂时只能用文件方式验证") from error
    resolver = resolver_module.Resolver()
    resolver.lifetime = TIMEOUT_SECONDS
    try:
        answer = resolver.resolve(name, "TXT")
    except (resolver_module.NXDOMAIN, resolver_module.NoAnswer, resolver_module.NoNameservers):
        return []
    except exception_module.DNSException as error:
        raise ProbeError("DNS 查询失败，请稍后重试") from error
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


def vetted_address(domain: str) -> str:
    """One address `domain` resolves to, after checking that every one of them is public."""
    try:
        infos = socket.getaddrinfo(domain, 80, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise ProbeError("域名无法解析，请先把域名解析到本站") from error
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise ProbeError("域名无法解析，请先把域名解析到本站")
    if not settings.KAMENG_SUBSITE_VERIFY_ALLOW_PRIVATE and not all(_is_public(address) for address in addresses):
        raise ProbeError("域名解析到了内网或保留地址，无法验证")
    return addresses[0]


def http_verification_file(domain: str) -> str:
    """The text of the verification file on `domain` ("" when it is not there)."""
    address = vetted_address(domain)
    host = f"[{address}]" if ":" in address else address
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as client, \
                client.stream("GET", f"http://{host}{FILE_PATH}", headers={"Host": domain}) as response:
            if response.status_code != 200:
                return ""
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_FILE_BYTES:
                    return ""
    except httpx.HTTPError as error:
        logger.info("verification file of %s not fetched: %s", domain, error)
        raise ProbeError("无法访问验证文件，请确认域名已解析到本站且 80 端口可访问") from error
    return body.decode("utf-8", "replace")


# The seams: tests put stubs here.
TXT_RESOLVER: Callable[[str], list[str]] = dns_txt_records
FILE_FETCHER: Callable[[str], str] = http_verification_file


def token_in_dns(*, domain: str, token: str) -> bool:
    return any(record.strip() == token for record in TXT_RESOLVER(TXT_PREFIX + domain))


def token_in_file(*, domain: str, token: str) -> bool:
    return FILE_FETCHER(domain).strip() == token
