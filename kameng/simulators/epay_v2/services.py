"""Writes of the simulated 易支付 V2 gateway (PROTOCOLS.md §1, seen from the gateway's side): merchants and the
platform key pair made for each, trades opened by api/pay/create, payment at the cashier, the signed asynchronous
notification, refunds idempotent by `out_refund_no`, and the signed JSON replies.

Requests are authenticated with the merchant's public key and must carry a timestamp within ±300 s. The
notification's HTTP call goes through `notify_transport` (an httpx transport, `None` = the network) so the tests
can route it into the Django application in-process; everything else about it is the real thing.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import httpx
from django.db import IntegrityError, transaction
from django.utils import timezone

from kameng.core.tasks import enqueue_after_commit
from kameng.simulators.epay_fields import EpayFieldRules, epay_number_new
from kameng.simulators.epay_v2.models import (
    SimulatedEpayV2Merchant,
    SimulatedEpayV2Refund,
    SimulatedEpayV2Trade,
    SimulatedEpayV2TradeStatus,
)
from kameng.simulators.epay_v2.selectors import EpayV2SimulatorError, simulated_epay_v2_trade_of_merchant
from kameng.simulators.epay_v2.signing import KeyPair, is_signature_valid, key_pair_generate, with_signature
from kameng.simulators.notify import (
    NotifyAttempt,
    NotifyPolicy,
    is_body_exactly_success,
    notify_deliver,
    notify_http,
    url_with_query,
)

logger = logging.getLogger(__name__)
_fields = EpayFieldRules(error=EpayV2SimulatorError)
_required = _fields.required
_checked_url = _fields.checked_url
_parsed_money = _fields.parsed_money

METHODS = frozenset({"web", "jump", "jsapi", "app", "scan", "applet"})
PAY_TYPES = frozenset({"alipay", "wxpay", "qqpay", "bank", "jdpay"})
OUT_NUMBER = re.compile(r"^[A-Za-z0-9._|\-]{1,64}$")
MAX_NAME_BYTES = 127
MAX_CLOCK_SKEW_SECONDS = 300
NOTIFY_MAX_ATTEMPTS = 8
# Seconds to wait after the n-th failed attempt (n = 1…7) before the next one: about 1 h 40 min in all.
NOTIFY_BACKOFF_SECONDS = (5, 15, 30, 60, 300, 1200, 4200)
NOTIFY_TIMEOUT_SECONDS = 10.0
NOTIFY_POLICY = NotifyPolicy(backoff_seconds=NOTIFY_BACKOFF_SECONDS, max_attempts=NOTIFY_MAX_ATTEMPTS)
notify_transport: httpx.BaseTransport | None = None


def epay_v2_merchant_key_pair_generate() -> KeyPair:
    """A merchant RSA key pair for the demo and the tests: the private half goes into the channel's merchant
    key, the public half to `simulated_epay_v2_merchant_create`."""
    return key_pair_generate()


def simulated_epay_v2_merchant_create(*, pid: str, merchant_public_key: str, name: str) -> SimulatedEpayV2Merchant:
    """Register a merchant (or update the key and name of an existing pid) and return it; its
    `platform_public_key` (bare base64) is what the payment channel needs. A new merchant gets a freshly
    generated platform key pair; an existing one keeps its pair so channels already configured keep working."""
    merchant = SimulatedEpayV2Merchant.objects.filter(pid=pid).first()
    if merchant is None:
        platform = key_pair_generate()
        merchant = SimulatedEpayV2Merchant(pid=pid, platform_public_key=platform.public_key,
                                           platform_private_key=platform.private_key)
    merchant.merchant_public_key = merchant_public_key.strip()
    merchant.name = name
    merchant.is_active = True
    merchant.save()
    return SimulatedEpayV2Merchant.objects.get(pk=merchant.pk)  # reloaded: the encrypted field reads back as text


def signed_reply(merchant: SimulatedEpayV2Merchant, data: dict[str, Any]) -> dict[str, Any]:
    """A successful JSON reply (`code=0`), stamped and signed with the platform private key."""
    reply: dict[str, Any] = {"code": 0, **data, "timestamp": str(int(time.time()))}
    return with_signature(reply, merchant.platform_signing_key)


def authenticated_merchant(params: dict[str, str]) -> SimulatedEpayV2Merchant:
    """The merchant named by `pid` whose private key produced `sign`, for a request stamped within ±300 s."""
    pid = _required(params, "pid")
    merchant = SimulatedEpayV2Merchant.objects.filter(pid=pid, is_active=True).first()
    if merchant is None:
        raise EpayV2SimulatorError("商户不存在或已停用", code="unknown_merchant")
    if not is_signature_valid(params, merchant.merchant_public_key):
        raise EpayV2SimulatorError("签名校验失败", code="bad_signature")
    timestamp = params.get("timestamp", "")
    if not re.fullmatch(r"\d{10}", timestamp) or abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise EpayV2SimulatorError("时间戳无效或与服务器时间相差超过 300 秒", code="bad_timestamp")
    return merchant


def simulated_epay_v2_trade_create(*, params: dict[str, str]) -> SimulatedEpayV2Trade:
    """api/pay/create: accept a signed request and return its trade.

    The same request again returns the same trade; the same `out_trade_no` with another amount is refused.
    """
    merchant = authenticated_merchant(params)
    method = _required(params, "method")
    if method not in METHODS:
        raise EpayV2SimulatorError(f"不支持的接口类型 {method}", code="bad_method")
    pay_type = _required(params, "type")
    if pay_type not in PAY_TYPES:
        raise EpayV2SimulatorError(f"不支持的支付方式 {pay_type}", code="bad_type")
    out_trade_no = _required(params, "out_trade_no")
    if not OUT_NUMBER.match(out_trade_no):
        raise EpayV2SimulatorError("商户订单号只能包含字母、数字和 . _ - |", code="bad_out_trade_no")
    name = _required(params, "name")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise EpayV2SimulatorError("商品名称超过 127 字节", code="bad_name")
    money_raw = _required(params, "money")
    money = _parsed_money(money_raw)
    notify_url = _checked_url(_required(params, "notify_url"), "notify_url")
    return_url = params.get("return_url", "")
    if return_url:
        _checked_url(return_url, "return_url")
    client_ip = _required(params, "clientip")

    existing = SimulatedEpayV2Trade.objects.filter(merchant=merchant, out_trade_no=out_trade_no).first()
    if existing is None:
        try:
            with transaction.atomic():
                return SimulatedEpayV2Trade.objects.create(
                    trade_no=epay_number_new(), merchant=merchant, out_trade_no=out_trade_no, method=method,
                    device=params.get("device", "")[:10], type=pay_type, name=name, money_raw=money_raw, money=money,
                    notify_url=notify_url, return_url=return_url, param=params.get("param", ""),
                    client_ip=client_ip[:64],
                )
        except IntegrityError:  # the same order submitted twice at once: the other request created it
            existing = SimulatedEpayV2Trade.objects.get(merchant=merchant, out_trade_no=out_trade_no)
    if existing.money != money:
        raise EpayV2SimulatorError("商户订单号已存在且金额不同", code="duplicate_out_trade_no")
    return existing


def simulated_epay_v2_trade_pay(*, trade_no: str) -> SimulatedEpayV2Trade:
    """The buyer pressed 确认支付: mark the trade paid and, after commit, start notifying the merchant.

    Paying an already paid trade changes nothing and sends nothing new.
    """
    from kameng.simulators.epay_v2.tasks import send_epay_v2_notify

    with transaction.atomic():
        trade = (SimulatedEpayV2Trade.objects.select_for_update().select_related("merchant")
                 .filter(trade_no=trade_no).first())
        if trade is None:
            raise EpayV2SimulatorError("交易不存在", code="unknown_trade", status_code=404)
        if trade.is_paid:
            return trade
        trade.status = SimulatedEpayV2TradeStatus.PAID
        trade.paid_at = timezone.now()
        trade.save(update_fields=["status", "paid_at"])
        enqueue_after_commit(send_epay_v2_notify, trade.pk)
    return trade


def _clock(value: Any) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S}" if value else ""


def simulated_epay_v2_notify_params(trade: SimulatedEpayV2Trade, *, timestamp: int | None = None) -> dict[str, str]:
    """The signed parameters of a paid trade's notification, stamped now (each retry is signed afresh).

    Blank fields are sent as well (and not signed, per the protocol). `money` is the raw string the merchant sent.
    """
    params = {
        "pid": trade.merchant.pid, "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
        "api_trade_no": "SIM" + trade.trade_no, "type": trade.type, "trade_status": "TRADE_SUCCESS",
        "addtime": _clock(trade.created_at), "endtime": _clock(trade.paid_at), "name": trade.name,
        "money": trade.money_raw, "param": trade.param, "buyer": "",
        "timestamp": str(int(time.time()) if timestamp is None else timestamp),
    }
    return with_signature(params, trade.merchant.platform_signing_key)


def simulated_epay_v2_return_url(trade: SimulatedEpayV2Trade) -> str:
    """Where the browser goes after paying: the merchant's `return_url` with the signed parameters appended."""
    return url_with_query(trade.return_url, simulated_epay_v2_notify_params(trade))


def _notify_get(url: str, params: dict[str, str]) -> tuple[int, str]:
    return notify_http("GET", url, transport=notify_transport, timeout=NOTIFY_TIMEOUT_SECONDS, params=params)


def simulated_epay_v2_notify_send(*, trade_id: int, is_forced: bool = False) -> NotifyAttempt:
    """Send one notification attempt for a paid trade and record it. Never called inside a transaction.

    Without `is_forced` nothing is sent once the merchant has answered `success` or the attempts are used up,
    so a task delivered twice sends no extra notification.
    """
    trade = SimulatedEpayV2Trade.objects.select_related("merchant").get(pk=trade_id)
    if not trade.is_paid:
        raise EpayV2SimulatorError("交易尚未支付，不能发送通知", code="not_paid")
    return notify_deliver(
        trade=trade, policy=NOTIFY_POLICY, is_forced=is_forced,
        send=lambda: _notify_get(trade.notify_url, simulated_epay_v2_notify_params(trade)),
        is_acknowledged=is_body_exactly_success, logger=logger, label="epay v2", reference=trade.trade_no)


def simulated_epay_v2_refund(*, params: dict[str, str]) -> SimulatedEpayV2Refund:
    """api/pay/refund: refund part or all of a paid trade, never more than was paid in total.

    Idempotent by `out_refund_no`: the same number again returns the refund already made (and refuses a
    different amount or trade under that number).
    """
    merchant = authenticated_merchant(params)
    out_refund_no = _required(params, "out_refund_no")
    if not OUT_NUMBER.match(out_refund_no):
        raise EpayV2SimulatorError("商户退款单号只能包含字母、数字和 . _ - |", code="bad_out_refund_no")
    amount = _parsed_money(_required(params, "money"))
    if not params.get("trade_no") and not params.get("out_trade_no"):
        raise EpayV2SimulatorError("缺少参数 trade_no 或 out_trade_no", code="missing_field")
    with transaction.atomic():
        trade = simulated_epay_v2_trade_of_merchant(merchant=merchant, trade_no=params.get("trade_no", ""),
                                                    out_trade_no=params.get("out_trade_no", ""))
        trade = SimulatedEpayV2Trade.objects.select_for_update().select_related("merchant").get(pk=trade.pk)
        existing = SimulatedEpayV2Refund.objects.filter(merchant=merchant, out_refund_no=out_refund_no).first()
        if existing is not None:
            if existing.trade_id != trade.pk or existing.money != amount:
                raise EpayV2SimulatorError("商户退款单号已存在且内容不同", code="duplicate_out_refund_no")
            return existing
        if not trade.is_paid:
            raise EpayV2SimulatorError("交易未支付，不能退款", code="not_paid")
        if trade.refunded_money + amount > trade.money:
            raise EpayV2SimulatorError(
                f"退款金额超出可退金额 ¥{trade.money - trade.refunded_money}", code="refund_exceeds_paid")
        trade.refunded_money += amount
        trade.save(update_fields=["refunded_money"])
        return SimulatedEpayV2Refund.objects.create(refund_no=epay_number_new(), merchant=merchant, trade=trade,
                                                    out_refund_no=out_refund_no, money=amount)
