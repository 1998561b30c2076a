"""易支付 epay V1 (MD5): the de-facto gateway protocol of small 发卡 sites (PROTOCOLS.md §1).

Signing: every received parameter except `sign`, `sign_type` and blank values, sorted by key (ASCII), joined raw
as `k=v&k=v`, the merchant key appended directly, MD5 in lowercase hex. The signature is checked over the raw
strings received — a gateway may send `money=1` for `1.00` — and amounts are compared as Decimal afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import httpx

from kameng.payments.gateways.base import (
    ChannelMisconfiguredError,
    CloseResult,
    CloseStatus,
    GatewayError,
    IncomingNotification,
    NotificationRejectedError,
    NotificationReply,
    PaymentStart,
    QueryResult,
    RefundResult,
    RefundStatus,
    RequestNotSentError,
    VerifiedNotification,
    gateway_amount,
)

if TYPE_CHECKING:
    from kameng.payments.models import PaymentChannel

QUERY_TIMEOUT_SECONDS = 10.0
HTTP_SERVER_ERROR = 500


def epay_canonical(params: dict[str, str]) -> str:
    pairs = sorted(
        (key, value) for key, value in params.items()
        if key not in ("sign", "sign_type") and isinstance(value, str) and value != ""
    )
    return "&".join(f"{key}={value}" for key, value in pairs)


def epay_sign(params: dict[str, str], key: str) -> str:
    if not key:
        # Signed with an empty key, anyone can forge the notifications and requests of this merchant.
        raise ChannelMisconfiguredError("易支付商户密钥为空，拒绝签名", code="channel_misconfigured")
    return hashlib.md5((epay_canonical(params) + key).encode()).hexdigest()  # noqa: S324 - the protocol's MD5


def notification_reject(reason: str) -> NotificationReply:
    # Anything but "success" makes the gateway retry; 400 tells a person reading logs it was refused.
    return NotificationReply("fail", status=400)


class EpayV1Gateway:
    has_refund_query = False  # the protocol has none: a refund with a lost answer goes to staff review
    has_close = False  # nor a close call: a payment made after we closed ours is credited when notified

    def __init__(self, *, gateway_url: str, merchant_id: str, merchant_key: str, pay_type: str = "") -> None:
        if not merchant_key.strip() or not merchant_id.strip():
            raise ChannelMisconfiguredError("易支付 V1 通道缺少商户 ID 或 MD5 密钥，不能使用",
                                            code="channel_misconfigured")
        self.gateway_url = gateway_url.rstrip("/") + "/"
        self.merchant_id = merchant_id
        self.merchant_key = merchant_key
        self.pay_type = pay_type

    def signed(self, params: dict[str, str]) -> dict[str, str]:
        return {**params, "sign": epay_sign(params, self.merchant_key), "sign_type": "MD5"}

    def start(self, *, out_trade_no: str, amount: Decimal, subject: str, notify_url: str, return_url: str,
              client_ip: str = "") -> PaymentStart:
        params = {
            "pid": self.merchant_id, "type": self.pay_type, "out_trade_no": out_trade_no, "notify_url": notify_url,
            "return_url": return_url, "name": subject.encode()[:127].decode(errors="ignore"), "money": f"{amount:.2f}",
        }
        params = {key: value for key, value in params.items() if value}
        return PaymentStart(redirect_url=self.gateway_url + "submit.php?" + urlencode(self.signed(params)))

    def verify_notification(self, notification: IncomingNotification) -> VerifiedNotification:
        params = notification.params
        received = params.get("sign", "")
        if not received:
            raise NotificationRejectedError("通知缺少签名", code="unsigned")
        if params.get("sign_type", "MD5").upper() != "MD5":
            raise NotificationRejectedError("不支持的签名类型", code="bad_sign_type")
        # Bytes, not str: compare_digest raises TypeError on a non-ASCII str, and a forged `sign` may be anything.
        if not hmac.compare_digest(received.lower().encode(), epay_sign(params, self.merchant_key).encode()):
            raise NotificationRejectedError("签名校验失败", code="bad_signature")
        if params.get("pid") != self.merchant_id:
            raise NotificationRejectedError("商户号不匹配", code="wrong_merchant")
        amount = gateway_amount(params.get("money", ""))
        if amount is None:
            raise NotificationRejectedError("金额格式错误", code="bad_amount")
        if not params.get("out_trade_no"):
            raise NotificationRejectedError("缺少商户订单号", code="missing_out_trade_no")
        return VerifiedNotification(
            out_trade_no=params["out_trade_no"], gateway_trade_no=params.get("trade_no", ""), amount=amount,
            is_paid=params.get("trade_status") == "TRADE_SUCCESS", merchant_id=params["pid"],
        )

    def return_is_authentic(self, params: dict[str, str]) -> bool:
        received = params.get("sign", "")
        if not received or params.get("sign_type", "MD5").upper() != "MD5" or not params.get("out_trade_no"):
            return False
        is_signed = hmac.compare_digest(received.lower().encode(), epay_sign(params, self.merchant_key).encode())
        return is_signed and params.get("pid") == self.merchant_id

    def acknowledge(self) -> NotificationReply:
        return NotificationReply("success")

    def reject(self, reason: str) -> NotificationReply:
        return notification_reject(reason)

    def query(self, *, out_trade_no: str) -> QueryResult:
        """`api.php?act=order`: the fallback for a lost notification. Server side only: the key travels in clear."""
        try:
            response = httpx.get(self.gateway_url + "api.php", timeout=QUERY_TIMEOUT_SECONDS, params={
                "act": "order", "pid": self.merchant_id, "key": self.merchant_key, "out_trade_no": out_trade_no})
            data = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise GatewayError("支付网关查询失败", code="gateway_unreachable") from error
        if str(data.get("code")) != "1":
            return QueryResult(is_paid=False, amount=None, gateway_trade_no="")
        amount = gateway_amount(str(data.get("money", "")))
        return QueryResult(is_paid=str(data.get("status")) == "1", amount=amount,
                           gateway_trade_no=str(data.get("trade_no", "")))

    def close(self, *, out_trade_no: str) -> CloseResult:
        return CloseResult(status=CloseStatus.UNSUPPORTED, message="易支付没有关单接口")

    def refund(self, *, out_trade_no: str, gateway_trade_no: str, refund_no: str, amount: Decimal,
               total_amount: Decimal, reason: str) -> RefundResult:
        """`api.php?act=refund` (POST pid, key, trade_no, money).

        V1 has no refund number and no refund query: a request whose answer is lost cannot be asked about, and
        sending it again asks for a second refund (the gateway then says "exceeds the refundable amount", which
        proves nothing about the first). So only a connection never made is RequestNotSentError (safe to send
        again); a timeout, a dropped connection, a 5xx or an unreadable answer is a GatewayError, outcome unknown.
        """
        try:
            response = httpx.post(self.gateway_url + "api.php", params={"act": "refund"}, timeout=QUERY_TIMEOUT_SECONDS,
                                  data={"pid": self.merchant_id, "key": self.merchant_key,
                                        "trade_no": gateway_trade_no, "money": f"{amount:.2f}"})
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise RequestNotSentError("支付网关无法连接，退款请求未发出", code="gateway_unreachable") from error
        except httpx.HTTPError as error:
            raise GatewayError("支付网关退款请求超时或连接中断，结果未知", code="gateway_outcome_unknown") from error
        if response.status_code >= HTTP_SERVER_ERROR:
            raise GatewayError("支付网关退款应答 HTTP %(status)s，结果未知", params={"status": response.status_code},
                               code="gateway_outcome_unknown")
        try:
            data = response.json()
        except ValueError as error:
            raise GatewayError("支付网关退款应答无法解析，结果未知", code="gateway_outcome_unknown") from error
        if not isinstance(data, dict):
            raise GatewayError("支付网关退款应答格式错误，结果未知", code="gateway_outcome_unknown")
        if str(data.get("code")) == "1":
            return RefundResult(status=RefundStatus.SUCCEEDED, message=str(data.get("msg", "")))
        return RefundResult(status=RefundStatus.FAILED, message=str(data.get("msg") or "退款失败"))

    def refund_query(self, *, out_trade_no: str, gateway_trade_no: str, refund_no: str) -> RefundResult:
        raise GatewayError("易支付 V1 没有退款查询接口", code="refund_query_unsupported")


def build(channel: PaymentChannel) -> EpayV1Gateway:
    return EpayV1Gateway(gateway_url=channel.gateway_url, merchant_id=channel.merchant_id,
                         merchant_key=str(channel.merchant_key or ""), pay_type=channel.pay_type)
