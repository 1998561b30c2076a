"""Writes of the simulated 易支付 gateway: merchants, trades opened by submit.php/mapi.php, payment, refunds and
the asynchronous notification it sends back to the merchant (PROTOCOLS.md §1, seen from the gateway's side).

The notification's HTTP call goes through `notify_transport` (an httpx transport, `None` = the network) so the
tests can route it into the Django application in-process; everything else about it is the real thing.
"""

from __future__ import annotations

import logging
import re

import httpx
from django.db import IntegrityError, transaction
from django.utils import timezone

from kameng.core.errors import NotFoundError
from kameng.core.tasks import enqueue_after_commit
from kameng.simulators.epay import is_signature_valid, with_signature
from kameng.simulators.epay_fields import EpayFieldRules, epay_number_new
from kameng.simulators.models import SimulatedEpayMerchant, SimulatedEpayTrade, SimulatedTradeStatus
from kameng.simulators.notify import (
    NotifyAttempt,
    NotifyPolicy,
    is_body_exactly_success,
    notify_deliver,
    notify_http,
    url_with_query,
)
from kameng.simulators.selectors import SimulatorRequestError, simulated_epay_merchant_by_key

logger = logging.getLogger(__name__)
_fields = EpayFieldRules(error=SimulatorRequestError)
_required = _fields.required
_checked_url = _fields.checked_url
_parsed_money = _fields.parsed_money

PAY_TYPES = frozenset({"alipay", "wxpay", "qqpay", "bank", "jdpay"})
OUT_TRADE_NO = re.compile(r"^[A-Za-z0-9._|\-]{1,64}$")
MAX_NAME_BYTES = 127
NOTIFY_MAX_ATTEMPTS = 8
# Seconds to wait after the n-th failed attempt (n = 1…7) before the next one: about 1 h 40 min in all.
NOTIFY_BACKOFF_SECONDS = (5, 15, 30, 60, 300, 1200, 4200)
NOTIFY_TIMEOUT_SECONDS = 10.0
NOTIFY_POLICY = NotifyPolicy(backoff_seconds=NOTIFY_BACKOFF_SECONDS, max_attempts=NOTIFY_MAX_ATTEMPTS)
notify_transport: httpx.BaseTransport | None = None


def simulated_epay_merchant_create(*, pid: str, key: str, name: str) -> SimulatedEpayMerchant:
    """Register a merchant with the simulated gateway, or update the key and name of an existing pid."""
    merchant, _ = SimulatedEpayMerchant.objects.update_or_create(
        pid=pid, defaults={"key": key, "name": name, "is_active": True})
    return merchant


def _authenticated_merchant(params: dict[str, str]) -> SimulatedEpayMerchant:
    """The merchant named by `pid` whose key produced `sign`; refuses anything else."""
    pid = _required(params, "pid")
    merchant = SimulatedEpayMerchant.objects.filter(pid=pid, is_active=True).first()
    if merchant is None:
        raise SimulatorRequestError("商户不存在或已停用", code="unknown_merchant")
    if not is_signature_valid(params, merchant.signing_key):
        raise SimulatorRequestError("签名校验失败", code="bad_signature")
    return merchant


def simulated_epay_trade_open(*, params: dict[str, str], client_ip: str = "",
                              is_return_url_required: bool = True) -> SimulatedEpayTrade:
    """Accept a signed submit.php / mapi.php request and return its trade.

    Sending the same request again (a browser refresh) returns the same trade; the same `out_trade_no` with a
    different amount is refused, as a real gateway does.
    """
    merchant = _authenticated_merchant(params)
    out_trade_no = _required(params, "out_trade_no")
    if not OUT_TRADE_NO.match(out_trade_no):
        raise SimulatorRequestError("商户订单号只能包含字母、数字和 . _ - |", code="bad_out_trade_no")
    name = _required(params, "name")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise SimulatorRequestError("商品名称超过 127 字节", code="bad_name")
    pay_type = params.get("type", "")
    if pay_type and pay_type not in PAY_TYPES:
        raise SimulatorRequestError(f"不支持的支付方式 {pay_type}", code="bad_type")
    money_raw = _required(params, "money")
    money = _parsed_money(money_raw)
    notify_url = _checked_url(_required(params, "notify_url"), "notify_url")
    return_url = params.get("return_url", "")
    if return_url or is_return_url_required:
        return_url = _checked_url(_required(params, "return_url"), "return_url")

    existing = SimulatedEpayTrade.objects.filter(merchant=merchant, out_trade_no=out_trade_no).first()
    if existing is None:
        try:
            with transaction.atomic():
                return SimulatedEpayTrade.objects.create(
                    trade_no=epay_number_new(), merchant=merchant, out_trade_no=out_trade_no, type=pay_type,
                    name=name, money_raw=money_raw, money=money, notify_url=notify_url, return_url=return_url,
                    param=params.get("param", ""), client_ip=client_ip[:64],
                )
        except IntegrityError:  # the same order submitted twice at once: the other request created it
            existing = SimulatedEpayTrade.objects.get(merchant=merchant, out_trade_no=out_trade_no)
    if existing.money != money:
        raise SimulatorRequestError("商户订单号已存在且金额不同", code="duplicate_out_trade_no",
                                    extra={"trade_no": existing.trade_no})
    return existing


def simulated_epay_trade_pay(*, trade_no: str) -> SimulatedEpayTrade:
    """The buyer pressed 确认支付: mark the trade paid and, after commit, start notifying the merchant.

    Paying an already paid trade changes nothing and sends nothing new.
    """
    from kameng.simulators.tasks import send_epay_notify

    with transaction.atomic():
        trade = (SimulatedEpayTrade.objects.select_for_update().select_related("merchant")
                 .filter(trade_no=trade_no).first())
        if trade is None:
            raise NotFoundError("交易不存在", code="unknown_trade")
        if trade.is_paid:
            return trade
        trade.status = SimulatedTradeStatus.PAID
        trade.paid_at = timezone.now()
        trade.save(update_fields=["status", "paid_at"])
        enqueue_after_commit(send_epay_notify, trade.pk)
    return trade


def simulated_epay_notify_params(trade: SimulatedEpayTrade) -> dict[str, str]:
    """The signed parameters of a paid trade's notification (the same ones are appended to `return_url`).

    `money` is the raw string the merchant sent, which is the string its own signature covered.
    """
    params = {
        "pid": trade.merchant.pid, "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
        "type": trade.type or "alipay", "name": trade.name, "money": trade.money_raw,
        "trade_status": "TRADE_SUCCESS",
    }
    if trade.param:
        params["param"] = trade.param
    return with_signature(params, trade.merchant.signing_key)


def simulated_epay_return_url(trade: SimulatedEpayTrade) -> str:
    """Where the browser goes after paying: the merchant's `return_url` with the signed parameters appended."""
    return url_with_query(trade.return_url, simulated_epay_notify_params(trade))


def _notify_get(url: str, params: dict[str, str]) -> tuple[int, str]:
    return notify_http("GET", url, transport=notify_transport, timeout=NOTIFY_TIMEOUT_SECONDS, params=params)


def simulated_epay_notify_send(*, trade_id: int, is_forced: bool = False) -> NotifyAttempt:
    """Send one notification attempt for a paid trade and record it. Never called inside a transaction.

    Without `is_forced` nothing is sent once the merchant has answered `success` or the attempts are used up,
    so a task delivered twice sends no extra notification.
    """
    trade = SimulatedEpayTrade.objects.select_related("merchant").get(pk=trade_id)
    if not trade.is_paid:
        raise SimulatorRequestError("交易尚未支付，不能发送通知", code="not_paid")
    return notify_deliver(
        trade=trade, policy=NOTIFY_POLICY, is_forced=is_forced,
        send=lambda: _notify_get(trade.notify_url, simulated_epay_notify_params(trade)),
        is_acknowledged=is_body_exactly_success, logger=logger, label="epay", reference=trade.trade_no)


def simulated_epay_refund(*, pid: str, key: str, trade_no: str, money_text: str) -> SimulatedEpayTrade:
    """api.php?act=refund: refund part or all of a paid trade; never more than was paid in total."""
    merchant = simulated_epay_merchant_by_key(pid=pid, key=key)
    amount = _parsed_money(money_text)
    with transaction.atomic():
        trade = SimulatedEpayTrade.objects.select_for_update().filter(
            merchant=merchant, trade_no=trade_no).first()
        if trade is None:
            raise SimulatorRequestError("交易不存在", code="unknown_trade")
        if not trade.is_paid:
            raise SimulatorRequestError("交易未支付，不能退款", code="not_paid")
        if trade.refunded_money + amount > trade.money:
            raise SimulatorRequestError(
                f"退款金额超出可退金额 ¥{trade.money - trade.refunded_money}", code="refund_exceeds_paid")
        trade.refunded_money += amount
        trade.save(update_fields=["refunded_money"])
    return trade
