"""Payment channels wired to the built-in simulators, for `make demo` (seed_demo) — never for production.

One channel per protocol, each with keys generated on the first run and kept afterwards (the simulator registers
the merchant's public half; the channel keeps the private half, encrypted). Re-running only follows a changed
SITE_URL. What it returns is printed by the demo and listed in the README, so anyone can pay — or forge a
notification — by hand.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal

from django.conf import settings

from kameng.payments.links import payment_notify_url
from kameng.payments.models import ChannelKind, PaymentChannel


@dataclass(frozen=True)
class DemoChannel:
    code: str
    name: str
    kind: str
    gateway_url: str
    merchant_id: str
    demo_key: str  # what a person needs to sign a request by hand: the MD5 key, or "(RSA key pair)"
    notify_url: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _site(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _register_epay_v1(channel: PaymentChannel) -> None:
    from kameng.simulators.services import simulated_epay_merchant_create

    simulated_epay_merchant_create(pid=channel.merchant_id, key=str(channel.merchant_key), name="kameng 演示商户")


def _new_epay_v1() -> dict[str, object]:
    return {"merchant_id": "1001", "merchant_key": secrets.token_hex(16), "pay_type": "alipay"}


def _new_epay_v2() -> dict[str, object]:
    from kameng.simulators.epay_v2 import services as simulator

    pair = simulator.epay_v2_merchant_key_pair_generate()
    merchant = simulator.simulated_epay_v2_merchant_create(pid="2001", merchant_public_key=pair.public_key,
                                                           name="kameng 演示商户")
    return {"merchant_id": "2001", "merchant_key": pair.private_key,
            "platform_public_key": merchant.platform_public_key, "pay_type": "alipay"}


def _new_alipay(pay_type: str, app_id: str) -> Callable[[], dict[str, object]]:
    def create() -> dict[str, object]:
        from kameng.simulators.alipay.services import alipay_app_key_pair_generate, simulated_alipay_app_create

        pair = alipay_app_key_pair_generate()
        app = simulated_alipay_app_create(app_id=app_id, app_public_key=pair.public_key, name="kameng 演示应用")
        # The adapter checks seller_id when the channel has one (kept in app_id for Alipay channels).
        return {"merchant_id": app_id, "app_id": app.seller_id, "merchant_key": pair.private_key,
                "platform_public_key": app.platform_public_key, "pay_type": pay_type}
    return create


def _new_wechat() -> dict[str, object]:
    from kameng.simulators.wechat.services import simulated_wechat_merchant_create, wechat_merchant_key_pair_generate

    pair = wechat_merchant_key_pair_generate()
    credentials = simulated_wechat_merchant_create(
        mchid="1900000109", appid="wxd678efh567hg6787", merchant_public_key_pem=pair.public_key_pem,
        merchant_serial_no=pair.serial_no, name="kameng 演示商户")
    return {"merchant_id": "1900000109", "app_id": "wxd678efh567hg6787", "merchant_key": pair.private_key_pem,
            "merchant_serial_no": pair.serial_no, "platform_public_key": credentials.platform_public_key_pem,
            "platform_key_id": credentials.platform_public_key_id, "api_v3_key": credentials.api_v3_key,
            "pay_type": "native"}


def _new_unionpay() -> dict[str, object]:
    from kameng.simulators.unionpay.services import (
        simulated_unionpay_authority,
        simulated_unionpay_merchant_create,
        unionpay_merchant_certificate_issue,
    )

    issued = unionpay_merchant_certificate_issue()
    merchant = simulated_unionpay_merchant_create(mer_id="777290058110048", name="kameng 演示商户",
                                                  certificate_pem=issued.certificate_pem)
    # The channel trusts the simulator's own root and intermediate, as a real one trusts UnionPay's.
    return {"merchant_id": merchant.mer_id, "merchant_key": issued.private_key_pem + issued.certificate_pem,
            "merchant_serial_no": merchant.cert_id, "platform_public_key": simulated_unionpay_authority().trust_bundle,
            "pay_type": "07"}


@dataclass(frozen=True)
class _Spec:
    code: str
    name: str
    kind: str
    path: str
    create: Callable[[], dict[str, object]]
    sort_order: int
    max_amount: Decimal = Decimal("50000.00")


SPECS = (
    _Spec("epay-sim", "模拟易支付（演示）", ChannelKind.EPAY_V1, "/sim/epay/", _new_epay_v1, 10),
    _Spec("epay-v2-sim", "模拟易支付 V2（RSA）", ChannelKind.EPAY_V2, "/sim/epay-v2/", _new_epay_v2, 20),
    _Spec("alipay-sim", "模拟支付宝（网页支付）", ChannelKind.ALIPAY, "/sim/alipay/gateway.do",
          _new_alipay("page", "2021000000000001"), 30),
    _Spec("alipay-qr-sim", "模拟支付宝（扫码）", ChannelKind.ALIPAY, "/sim/alipay/gateway.do",
          _new_alipay("precreate", "2021000000000002"), 40),
    _Spec("wechat-sim", "模拟微信支付（Native 扫码）", ChannelKind.WECHAT_V3, "/sim/wechat", _new_wechat, 50),
    _Spec("unionpay-sim", "模拟银联（网关支付）", ChannelKind.UNIONPAY, "/sim/unionpay/gateway/api/",
          _new_unionpay, 60),
)


def demo_channels_ensure() -> list[DemoChannel]:
    """Create the simulated channels that are missing (and the balance channel); return all of them."""
    result = []
    for spec in SPECS:
        gateway_url = _site(spec.path)
        channel = PaymentChannel.objects.filter(code=spec.code).first()
        if channel is None:
            channel = PaymentChannel.objects.create(code=spec.code, name=spec.name, kind=spec.kind,
                                                    gateway_url=gateway_url, sort_order=spec.sort_order,
                                                    max_amount=spec.max_amount, **spec.create())
        elif channel.gateway_url != gateway_url:
            channel.gateway_url = gateway_url  # SITE_URL changed (another port): follow it, keep the keys
            channel.save(update_fields=["gateway_url"])
        if channel.kind == ChannelKind.EPAY_V1:
            _register_epay_v1(channel)  # an upsert: the simulator always knows the channel's current key
        is_md5 = channel.kind == ChannelKind.EPAY_V1
        demo_key = str(channel.merchant_key) if is_md5 else "（RSA 密钥对，见后台通道设置）"
        result.append(DemoChannel(
            code=channel.code, name=channel.name, kind=channel.kind, gateway_url=channel.gateway_url,
            merchant_id=channel.merchant_id, demo_key=demo_key,
            notify_url=payment_notify_url(channel_code=channel.code)))
    PaymentChannel.objects.get_or_create(code="balance", defaults={
        "name": "钱包余额", "kind": ChannelKind.BALANCE, "sort_order": 0, "merchant_key": None, "pay_type": ""})
    return result
