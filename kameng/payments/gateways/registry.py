"""Which adapter speaks for a channel. Each adapter module exposes `build(channel) -> PaymentGateway`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from kameng.core.errors import ApplicationError

if TYPE_CHECKING:
    from kameng.payments.gateways.base import PaymentGateway
    from kameng.payments.models import PaymentChannel

ADAPTER_MODULES = {
    "epay_v1": "kameng.payments.gateways.epay",
    "epay_v2": "kameng.payments.gateways.epay_v2",
    "alipay": "kameng.payments.gateways.alipay",
    "wechat_v3": "kameng.payments.gateways.wechat",
}


def gateway_for(channel: PaymentChannel) -> PaymentGateway:
    module_name = ADAPTER_MODULES.get(channel.kind)
    if module_name is None:
        raise ApplicationError(f"支付方式「{channel.name}」没有网关适配器", code="channel_kind_unsupported")
    gateway: PaymentGateway = importlib.import_module(module_name).build(channel)
    return gateway
