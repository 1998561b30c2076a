"""Where a supplier wants its restock requests (补货通知设置), set in its console: a webhook URL and an e-mail
address, kept in its encrypted connector config (`webhook_url`, `webhook_secret`, `notify_email`) beside what staff
set there.

The webhook's signing secret is made here, never typed: it is shown once, when a URL is first set or when the
supplier asks for a new one. The URL must be HTTPS to a host that resolves only to public addresses — the worker
must not be made to POST into the platform's own network (the loopback, a private range, a cloud metadata
address). The check is made when the URL is saved; a host that later resolves elsewhere is the known limit of it.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import transaction

from kameng.core.errors import ApplicationError
from kameng.suppliers.connectors.registry import connector_config_of
from kameng.suppliers.models import Supplier


def host_addresses(host: str) -> list[str]:
    """Every address `host` resolves to (a seam: tests resolve without a network)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)]


def webhook_url_check(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or len(url) > 300:
        raise ApplicationError("Webhook 地址必须是 https:// 开头的完整网址", code="webhook_url_invalid")
    try:
        addresses = host_addresses(parts.hostname)
    except OSError as error:
        raise ApplicationError("无法解析 Webhook 地址的域名，请检查后重试", code="webhook_url_unresolved") from error
    if not addresses or not all(ipaddress.ip_address(address.split("%")[0]).is_global for address in addresses):
        raise ApplicationError("Webhook 地址必须指向公网服务器", code="webhook_url_private")
    return url


@dataclass(frozen=True)
class NotifySettings:
    webhook_url: str
    notify_email: str
    has_secret: bool


def supplier_notify_settings(*, supplier: Supplier) -> NotifySettings:
    config = connector_config_of(supplier)
    return NotifySettings(webhook_url=str(config.get("webhook_url") or ""),
                          notify_email=str(config.get("notify_email") or ""),
                          has_secret=bool(config.get("webhook_secret")))


def supplier_notify_settings_update(*, supplier_id: int, webhook_url: str, notify_email: str,
                                    new_secret: bool = False) -> str:
    """Save the supplier's notification settings; returns the new webhook secret when one was made (to be shown
    once), else "". An empty URL turns the webhook off (and forgets the secret)."""
    webhook_url = webhook_url_check(webhook_url) if webhook_url.strip() else ""
    notify_email = notify_email.strip()
    if notify_email:
        try:
            EmailValidator()(notify_email)
        except ValidationError as error:
            raise ApplicationError("请输入有效的邮箱地址", code="notify_email_invalid") from error
    made = ""
    with transaction.atomic():
        supplier = Supplier.objects.select_for_update().get(pk=supplier_id)
        config = connector_config_of(supplier)
        config.pop("webhook_url", None)
        config.pop("notify_email", None)
        if webhook_url:
            config["webhook_url"] = webhook_url
            if new_secret or not config.get("webhook_secret"):
                made = config["webhook_secret"] = secrets.token_urlsafe(32)
        else:
            config.pop("webhook_secret", None)
        if notify_email:
            config["notify_email"] = notify_email
        supplier.connector_config = json.dumps(config, ensure_ascii=False) if config else None
        supplier.save(update_fields=["connector_config"])
    return made
