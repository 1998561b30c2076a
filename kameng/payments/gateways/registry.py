"""Which adapter speaks for a channel. Each adapter module exposes `build(channel) -> PaymentGateway`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from kameng.core.errors import ApplicationError
from kameng.payments.gateways.base import ChannelMisconfiguredError, NotificationReply

if TYPE_CHECKING:
    from kameng.payments.gateways.base import PaymentGateway
    from kameng.payments.models import PaymentChannel

ADAPTER_MODULES = {
    "epay_v1": "kameng.payments.gateways.epay",
    "epay_v2": "kameng.payments.gateways.epay_v2",
    "alipay": "kameng.payments.gateways.alipay",
    "wechat_v3": "kameng.payments.gateways.wechat",
    "unionpay": "kameng.payments.gateways.unionpay",
}


def channel_check_usable(channel: PaymentChannel) -> None:
    """Refuse a channel whose protocol fields are not all filled in (epay V1 would sign with an empty key)."""
    missing = channel.missing_fields()
    if missing:
        raise ChannelMisconfiguredError(
            "支付方式「%(name)s」配置不完整，暂不可用，请换一种支付方式", params={"name": channel.name},
            code="channel_misconfigured", extra={"missing": missing})


def gateway_for(channel: PaymentChannel) -> PaymentGateway:
    """The adapter for a channel; raises ChannelMisconfiguredError (nothing built, nothing sent) if it lacks a
    credential its protocol needs."""
    module_name = ADAPTER_MODULES.get(channel.kind)
    if module_name is None:
        raise ApplicationError("支付方式「%(name)s」没有网关适配器", params={"name": channel.name},
                               code="channel_kind_unsupported")
    channel_check_usable(channel)
    gateway: PaymentGateway = importlib.import_module(module_name).build(channel)
    return gateway


def notification_reject_for(channel: PaymentChannel, reason: str) -> NotificationReply:
    """The refusal a channel's gateway understands, without building the adapter (a misconfigured channel
    cannot be built, but its notifications still get an answer that makes the gateway retry later)."""
    module_name = ADAPTER_MODULES.get(channel.kind)
    if module_name is None:
        return NotificationReply("fail", status=400)
    reply: NotificationReply = importlib.import_module(module_name).notification_reject(reason)
    return reply
