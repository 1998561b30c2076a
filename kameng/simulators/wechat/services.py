"""Writes of the simulated WeChat Pay (API v3, Native): merchants and their keys, signed API requests, trades paid
by "scanning" the code, refunds, and the signed, encrypted notification sent back to the merchant.

The notification's HTTP call goes through `notify_transport` (an httpx transport, `None` = the network) so the
tests can deliver it into the Django application in-process; everything else about it is the real thing.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.db import IntegrityError, transaction
from django.utils import timezone

from kameng.core.errors import ApplicationError
from kameng.core.tasks import enqueue_after_commit
from kameng.simulators.notify import NotifyAttempt, NotifyPolicy, notify_deliver, notify_http
from kameng.simulators.wechat import signing
from kameng.simulators.wechat.models import (
    SimulatedWechatMerchant,
    SimulatedWechatRefund,
    SimulatedWechatTrade,
    TradeState,
)

logger = logging.getLogger(__name__)

OUT_TRADE_NO = re.compile(r"^[A-Za-z0-9_\-*]{6,32}$")
OUT_REFUND_NO = re.compile(r"^[A-Za-z0-9_\-*@|]{1,64}$")
MAX_DESCRIPTION_CHARACTERS = 127
MAX_TOTAL_FEN = 100_000_000
NOTIFY_TIMEOUT_SECONDS = 10.0
# WeChat retries an unacknowledged notification 15 times over about 24 hours; seconds after the n-th failure.
NOTIFY_BACKOFF_SECONDS = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600)
NOTIFY_MAX_ATTEMPTS = len(NOTIFY_BACKOFF_SECONDS) + 1
CHINA = timezone.get_fixed_timezone(8 * 60)
NOTIFY_POLICY = NotifyPolicy(backoff_seconds=NOTIFY_BACKOFF_SECONDS, max_attempts=NOTIFY_MAX_ATTEMPTS)
notify_transport: httpx.BaseTransport | None = None


class WechatApiError(ApplicationError):
    """An API error the way WeChat answers it: HTTP status and `{"code": "PARAM_ERROR", "message": "…"}`."""


def _error(code: str, message: str, status: int = 400) -> WechatApiError:
    return WechatApiError(message, code=code, status_code=status)


@dataclass(frozen=True)
class MerchantKeyPair:
    """What a merchant downloads from the merchant platform: its API private key and certificate serial number."""

    private_key_pem: str
    public_key_pem: str
    serial_no: str


def wechat_merchant_key_pair_generate() -> MerchantKeyPair:
    pair = signing.key_pair_generate()
    return MerchantKeyPair(private_key_pem=pair.private_key_pem, public_key_pem=pair.public_key_pem,
                           serial_no=signing.certificate_serial_no_new())


@dataclass(frozen=True)
class SimulatedWechatCredentials:
    """What kameng's channel needs from the merchant platform: WeChat Pay's public key, its id, the APIv3 key."""

    merchant: SimulatedWechatMerchant
    platform_public_key_pem: str
    platform_public_key_id: str
    api_v3_key: str


def simulated_wechat_merchant_create(*, mchid: str, appid: str, merchant_public_key_pem: str,
                                     merchant_serial_no: str, name: str = "模拟商户") -> SimulatedWechatCredentials:
    """Register a merchant (or update an existing mchid's appid and merchant key). The platform key pair and the
    APIv3 key are made once, at the first registration, and kept afterwards."""
    merchant = SimulatedWechatMerchant.objects.filter(mchid=mchid).first()
    if merchant is None:
        platform = signing.key_pair_generate()
        merchant = SimulatedWechatMerchant(
            mchid=mchid, platform_private_key=platform.private_key_pem, platform_public_key=platform.public_key_pem,
            platform_public_key_id=signing.public_key_id_new(), api_v3_key=signing.random_text(32))
    merchant.appid = appid
    merchant.name = name
    merchant.merchant_public_key = merchant_public_key_pem
    merchant.merchant_serial_no = merchant_serial_no
    merchant.is_active = True
    merchant.save()
    merchant.refresh_from_db()  # the encrypted fields come back as text
    return SimulatedWechatCredentials(merchant=merchant, platform_public_key_pem=merchant.platform_public_key,
                                      platform_public_key_id=merchant.platform_public_key_id,
                                      api_v3_key=merchant.api_v3_key_text)


def simulated_wechat_request_authenticate(*, method: str, path: str, body: bytes,
                                          authorization: str) -> SimulatedWechatMerchant:
    """The merchant whose API key signed this request (`path` includes the query, relative to the API root)."""
    fields = signing.authorization_parse(authorization)
    if fields is None:
        raise _error("SIGN_ERROR", "Authorization 头缺失或格式错误", 401)
    merchant = SimulatedWechatMerchant.objects.filter(mchid=fields["mchid"], is_active=True).first()
    if merchant is None:
        raise _error("SIGN_ERROR", "商户号不存在", 401)
    if fields["serial_no"] != merchant.merchant_serial_no:
        raise _error("SIGN_ERROR", "商户证书序列号不匹配", 401)
    try:
        skew = abs(int(fields["timestamp"]) - int(time.time()))
    except ValueError:
        skew = signing.REQUEST_CLOCK_SKEW_SECONDS + 1
    if skew > signing.REQUEST_CLOCK_SKEW_SECONDS:
        raise _error("SIGN_ERROR", "请求时间戳已过期", 401)
    message = signing.request_message(method=method, path=path, timestamp=fields["timestamp"],
                                      nonce=fields["nonce_str"], body=body)
    if not signing.is_rsa_signature_valid(merchant.merchant_public_key, message, fields["signature"]):
        raise _error("SIGN_ERROR", "签名错误", 401)
    return merchant


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as error:
        raise _error("PARAM_ERROR", "请求体不是有效的 JSON") from error
    if not isinstance(data, dict):
        raise _error("PARAM_ERROR", "请求体必须是 JSON 对象")
    return data


def _positive_fen(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_TOTAL_FEN:
        raise _error("PARAM_ERROR", f"{name} 必须是正整数（单位：分）")
    return value


def _new_id(prefix: str) -> str:
    now = timezone.localtime()
    return f"{prefix}{now:%Y%m%d%H%M%S}{secrets.randbelow(10**12):012d}"[:32]


def simulated_wechat_native_open(*, merchant: SimulatedWechatMerchant, body: bytes) -> SimulatedWechatTrade:
    """POST /v3/pay/transactions/native. The same request again returns the same unpaid trade."""
    data = _json_object(body)
    if data.get("mchid") != merchant.mchid:
        raise _error("PARAM_ERROR", "mchid 与请求商户不一致")
    if data.get("appid") != merchant.appid:
        raise _error("APPID_MCHID_NOT_MATCH", "appid 和 mch_id 不匹配")
    description = data.get("description")
    if not isinstance(description, str) or not 0 < len(description) <= MAX_DESCRIPTION_CHARACTERS:
        raise _error("PARAM_ERROR", "description 长度须在 1–127 之间")
    out_trade_no = data.get("out_trade_no")
    if not isinstance(out_trade_no, str) or not OUT_TRADE_NO.match(out_trade_no):
        raise _error("PARAM_ERROR", "out_trade_no 须为 6–32 位字母、数字或 _-*")
    notify_url = data.get("notify_url")
    parts = urlsplit(notify_url) if isinstance(notify_url, str) else None
    # Real WeChat wants https; the simulator also takes http so a local demo can be notified.
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise _error("PARAM_ERROR", "notify_url 须为不带参数的 http(s) 地址")
    amount = data.get("amount")
    if not isinstance(amount, dict):
        raise _error("PARAM_ERROR", "缺少 amount")
    total = _positive_fen(amount.get("total"), "amount.total")
    if amount.get("currency", "CNY") != "CNY":
        raise _error("PARAM_ERROR", "仅支持 CNY")
    scene_info = data.get("scene_info")
    if not isinstance(scene_info, dict):
        scene_info = {}
    fields = {"appid": merchant.appid, "description": description, "total": total, "notify_url": notify_url,
              "attach": str(data.get("attach", ""))[:128],
              "payer_client_ip": str(scene_info.get("payer_client_ip", ""))[:45]}

    existing = SimulatedWechatTrade.objects.filter(merchant=merchant, out_trade_no=out_trade_no).first()
    if existing is None:
        try:
            with transaction.atomic():
                return SimulatedWechatTrade.objects.create(
                    transaction_id=_new_id("42"), merchant=merchant, out_trade_no=out_trade_no, **fields)
        except IntegrityError:  # the same order opened twice at once: the other request created it
            existing = SimulatedWechatTrade.objects.get(merchant=merchant, out_trade_no=out_trade_no)
    if existing.trade_state != TradeState.NOTPAY:  # paid (or refunded), or closed: it cannot be paid again
        raise _error("ORDERPAID", "该订单已支付", 403) if existing.is_paid else _error("ORDER_CLOSED", "订单已关闭")
    if existing.total != total or existing.description != description:
        raise _error("INVALID_REQUEST", "201 商户订单号重复")
    return existing


def simulated_wechat_trade_of_merchant(*, merchant: SimulatedWechatMerchant, out_trade_no: str,
                                       mchid: str) -> SimulatedWechatTrade:
    """GET /v3/pay/transactions/out-trade-no/{no}?mchid=…"""
    if mchid != merchant.mchid:
        raise _error("PARAM_ERROR", "mchid 与请求商户不一致")
    trade = SimulatedWechatTrade.objects.filter(merchant=merchant, out_trade_no=out_trade_no).first()
    if trade is None:
        raise _error("ORDER_NOT_EXIST", "订单不存在", 404)
    return trade


def simulated_wechat_trade_close(*, merchant: SimulatedWechatMerchant, out_trade_no: str,
                                 body: bytes) -> SimulatedWechatTrade:
    """POST /v3/pay/transactions/out-trade-no/{no}/close with {"mchid": …}: an unpaid trade is CLOSED and its code
    can no longer be paid (answered 204). Closing a closed trade again is fine; a paid one is refused (ORDERPAID)."""
    data = _json_object(body)
    if data.get("mchid") != merchant.mchid:
        raise _error("PARAM_ERROR", "mchid 与请求商户不一致")
    with transaction.atomic():
        trade = (SimulatedWechatTrade.objects.select_for_update()
                 .filter(merchant=merchant, out_trade_no=out_trade_no).first())
        if trade is None:
            raise _error("ORDER_NOT_EXIST", "订单不存在", 404)
        if trade.is_paid:
            raise _error("ORDERPAID", "订单已支付，不能关闭")
        if trade.trade_state != TradeState.CLOSED:
            trade.trade_state = TradeState.CLOSED
            trade.save(update_fields=["trade_state"])
    return trade


def simulated_wechat_trade_pay(*, transaction_id: str) -> SimulatedWechatTrade:
    """The buyer pressed 确认支付 on the scan page: the trade is paid and, after commit, the merchant notified.

    Paying a paid trade again changes nothing and sends nothing new; a closed trade cannot be paid.
    """
    from kameng.simulators.wechat.tasks import send_wechat_notify

    with transaction.atomic():
        trade = (SimulatedWechatTrade.objects.select_for_update().select_related("merchant")
                 .filter(transaction_id=transaction_id).first())
        if trade is None:
            raise _error("ORDER_NOT_EXIST", "交易不存在", 404)
        if trade.trade_state == TradeState.CLOSED:
            raise _error("ORDER_CLOSED", "订单已关闭，不能支付")
        if trade.trade_state != TradeState.NOTPAY:
            return trade
        trade.trade_state = TradeState.SUCCESS
        trade.success_time = timezone.now()
        trade.save(update_fields=["trade_state", "success_time"])
        enqueue_after_commit(send_wechat_notify, trade.pk)
    return trade


def _rfc3339(moment: Any) -> str:
    return moment.astimezone(CHINA).isoformat(timespec="seconds") if moment else ""


TRADE_STATE_DESCRIPTIONS = {TradeState.NOTPAY: "订单未支付", TradeState.SUCCESS: "支付成功",
                            TradeState.REFUND: "转入退款", TradeState.CLOSED: "已关闭"}


def simulated_wechat_transaction(trade: SimulatedWechatTrade) -> dict[str, Any]:
    """A trade as the query API answers it and as a notification's decrypted resource holds it."""
    data: dict[str, Any] = {
        "appid": trade.appid, "mchid": trade.merchant.mchid, "out_trade_no": trade.out_trade_no,
        "trade_state": trade.trade_state, "trade_state_desc": TRADE_STATE_DESCRIPTIONS[TradeState(trade.trade_state)],
        "attach": trade.attach, "amount": {"total": trade.total, "currency": "CNY"},
    }
    if trade.is_paid:
        data.update({
            "transaction_id": trade.transaction_id, "trade_type": "NATIVE", "bank_type": "OTHERS",
            "success_time": _rfc3339(trade.success_time),
            "payer": {"openid": "oSim" + trade.transaction_id[-24:]},
            "amount": {"total": trade.total, "payer_total": trade.total, "currency": "CNY", "payer_currency": "CNY"},
        })
    return data


def simulated_wechat_notify_body(trade: SimulatedWechatTrade) -> bytes:
    """A TRANSACTION.SUCCESS notification: the transaction encrypted with the merchant's APIv3 key."""
    merchant = trade.merchant
    resource = signing.resource_encrypt(api_v3_key=merchant.api_v3_key_text,
                                        plaintext=simulated_wechat_transaction(trade))
    event = {
        "id": f"EV-{trade.transaction_id}-{secrets.token_hex(4)}", "create_time": _rfc3339(timezone.now()),
        "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
        "resource": resource,
    }
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def simulated_wechat_signed_headers(merchant: SimulatedWechatMerchant, body: bytes) -> dict[str, str]:
    return signing.signed_message_headers(platform_private_key_pem=merchant.platform_private_key_pem,
                                          platform_key_id=merchant.platform_public_key_id, body=body)


def _notify_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    return notify_http("POST", url, transport=notify_transport, timeout=NOTIFY_TIMEOUT_SECONDS, content=body,
                       headers={"Content-Type": "application/json", **headers})


def _is_acknowledged(status_code: int, body: str) -> bool:
    return 200 <= status_code < 300


def simulated_wechat_notify_send(*, trade_id: int, is_forced: bool = False) -> NotifyAttempt:
    """Send one notification attempt for a paid trade and record it. Never called inside a transaction.

    Any 2xx acknowledges it. Without `is_forced` nothing is sent once acknowledged or out of attempts, so a task
    delivered twice sends no extra notification.
    """
    trade = SimulatedWechatTrade.objects.select_related("merchant").get(pk=trade_id)
    if not trade.is_paid:
        raise _error("ORDER_NOT_PAID", "交易尚未支付，不能发送通知")

    def send() -> tuple[int, str]:
        body = simulated_wechat_notify_body(trade)  # encrypted and signed afresh for each attempt
        return _notify_post(trade.notify_url, body, simulated_wechat_signed_headers(trade.merchant, body))

    return notify_deliver(trade=trade, policy=NOTIFY_POLICY, is_forced=is_forced,
                          send=send, is_acknowledged=_is_acknowledged, logger=logger, label="wechat",
                          reference=trade.transaction_id)


def simulated_wechat_refund_create(*, merchant: SimulatedWechatMerchant, body: bytes) -> SimulatedWechatRefund:
    """POST /v3/refund/domestic/refunds. The same out_refund_no again returns the same refund, refunded once."""
    data = _json_object(body)
    out_refund_no = data.get("out_refund_no")
    if not isinstance(out_refund_no, str) or not OUT_REFUND_NO.match(out_refund_no):
        raise _error("PARAM_ERROR", "out_refund_no 格式错误")
    amount = data.get("amount")
    if not isinstance(amount, dict):
        raise _error("PARAM_ERROR", "缺少 amount")
    refund_fen = _positive_fen(amount.get("refund"), "amount.refund")
    total_fen = _positive_fen(amount.get("total"), "amount.total")
    trades = SimulatedWechatTrade.objects.filter(merchant=merchant)
    if data.get("transaction_id"):
        trades = trades.filter(transaction_id=data["transaction_id"])
    elif data.get("out_trade_no"):
        trades = trades.filter(out_trade_no=data["out_trade_no"])
    else:
        raise _error("PARAM_ERROR", "transaction_id 和 out_trade_no 必须填一个")
    with transaction.atomic():
        trade = trades.select_for_update().first()
        if trade is None:
            raise _error("RESOURCE_NOT_EXISTS", "订单不存在", 404)
        existing = SimulatedWechatRefund.objects.filter(trade__merchant=merchant, out_refund_no=out_refund_no).first()
        if existing is not None:
            if existing.trade_id != trade.pk or existing.refund != refund_fen:
                raise _error("INVALID_REQUEST", "退款单号已存在且参数不一致")
            return existing
        if not trade.is_paid:
            raise _error("INVALID_REQUEST", "订单未支付，不能退款")
        if total_fen != trade.total:
            raise _error("PARAM_ERROR", "订单金额与原订单不一致")
        if trade.refunded_total + refund_fen > trade.total:
            raise _error("NOT_ENOUGH", f"申请退款金额超过订单可退金额 {trade.total - trade.refunded_total} 分", 403)
        trade.refunded_total += refund_fen
        trade.trade_state = TradeState.REFUND
        trade.save(update_fields=["refunded_total", "trade_state"])
        return SimulatedWechatRefund.objects.create(
            refund_id=_new_id("50"), trade=trade, out_refund_no=out_refund_no, refund=refund_fen,
            reason=str(data.get("reason", ""))[:80])


def simulated_wechat_refund_of_merchant(*, merchant: SimulatedWechatMerchant,
                                        out_refund_no: str) -> SimulatedWechatRefund:
    """GET /v3/refund/domestic/refunds/{out_refund_no}: a refund this merchant asked for, or 404."""
    refund = (SimulatedWechatRefund.objects.select_related("trade")
              .filter(trade__merchant=merchant, out_refund_no=out_refund_no).first())
    if refund is None:
        raise _error("RESOURCE_NOT_EXISTS", "退款单不存在", 404)
    return refund


def simulated_wechat_refund_json(refund: SimulatedWechatRefund) -> dict[str, Any]:
    trade = refund.trade
    return {
        "refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no,
        "transaction_id": trade.transaction_id, "out_trade_no": trade.out_trade_no, "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱", "success_time": _rfc3339(refund.created_at),
        "create_time": _rfc3339(refund.created_at), "status": refund.status, "funds_account": "AVAILABLE",
        "amount": {"total": trade.total, "refund": refund.refund, "payer_total": trade.total,
                   "payer_refund": refund.refund, "settlement_refund": refund.refund,
                   "settlement_total": trade.total, "discount_refund": 0, "currency": "CNY"},
    }
