"""支付宝开放平台 (RSA2): page pay, precreate (QR), notifications, query and refund (PROTOCOLS.md §2).

Built on python-alipay-sdk: it signs requests (SHA256withRSA over the sorted `k=v` string, `sign_type` included)
and verifies both the synchronous answers and the asynchronous notifications. Two things are ours:

- The HTTP call of the server APIs. The SDK GETs the whole signed request with `urllib`; we POST the same signed
  form with httpx (as Alipay's own SDKs do), so timeouts and connection errors become `GatewayError`, and the
  tests can inject a transport (`server_transport`) instead of opening a socket.
- The checks after the signature: `app_id` (and `seller_id`, when the channel has one) must be ours, the amount a
  well-formed Decimal, the trade status a known one. That the `out_trade_no` is ours and that `total_amount`
  equals the payment is checked by the payment services, which own the database.

Channel fields: `gateway_url` the full gateway.do URL, `merchant_id` the app_id, `merchant_key` the app private
key, `platform_public_key` the Alipay public key (PEM, or the bare base64 the Alipay console shows), `pay_type`
"page" or "precreate". `app_id` holds the seller's 2088… PID (`seller_id`) when it should be checked; empty skips
that check (an app may collect for several sellers).
"""

from __future__ import annotations

import logging
import re
import textwrap
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError

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
    VerifiedNotification,
    gateway_amount,
)

if TYPE_CHECKING:
    from kameng.payments.models import PaymentChannel

logger = logging.getLogger(__name__)

SERVER_TIMEOUT_SECONDS = 15.0
PAID_STATUSES = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})
KNOWN_STATUSES = PAID_STATUSES | {"WAIT_BUYER_PAY", "TRADE_CLOSED"}
SUCCESS_CODE = "10000"
# An httpx transport for the server API calls (`None` = the network); the tests route it into Django.
server_transport: httpx.BaseTransport | None = None


def _pem(key: str, *, kind: str) -> str:
    """A PEM for the SDK: PEM text as is; the bare base64 the Alipay console shows, wrapped (the header does not
    matter to the loader, which tries PKCS#1 and PKCS#8 alike)."""
    key = key.strip()
    if key.startswith("-----BEGIN"):
        return key
    body = "\n".join(textwrap.wrap(re.sub(r"\s+", "", key), 64))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


class _HttpxAliPay(AliPay):
    """The SDK client, with its one network call replaced by an httpx POST of the same signed form."""

    def verified_sync_response(self, data: dict[str, Any], response_type: str) -> dict[str, Any]:
        try:
            with httpx.Client(transport=server_transport, timeout=SERVER_TIMEOUT_SECONDS) as client:
                response = client.post(
                    self._gateway, params={"charset": "utf-8"}, content=self.sign_data(data).encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"})
        except httpx.HTTPError as error:
            raise GatewayError("支付宝网关无法连接", code="gateway_unreachable") from error
        if response.status_code != 200:
            raise GatewayError("支付宝网关返回 HTTP %(status)s", params={"status": response.status_code},
                               code="gateway_http_error")
        try:
            verified: dict[str, Any] = self._verify_and_return_sync_response(
                response.content.decode("utf-8"), response_type)
        except AliPayValidationError as error:
            logger.warning("alipay: %s answer with a bad signature from %s", response_type, self._gateway)
            raise GatewayError("支付宝应答验签失败", code="gateway_bad_signature") from error
        except AliPayException as error:  # an unsigned answer: a bad request (app id, signature, parameters)
            raise GatewayError("支付宝拒绝了请求：%(reason)s", params={"reason": str(error)[:200]},
                               code="gateway_refused") from error
        except (ValueError, KeyError, AttributeError) as error:
            raise GatewayError("支付宝应答格式错误", code="gateway_bad_answer") from error
        return verified


def _refusal(answer: dict[str, Any]) -> str:
    return str(answer.get("sub_msg") or answer.get("msg") or "未知错误")[:200]


def notification_reject(reason: str) -> NotificationReply:
    # Anything but the 7 bytes "success" makes Alipay retry; 400 tells a person reading logs it was refused.
    return NotificationReply("fail", status=400)


class AlipayGateway:
    has_refund_query = True
    has_close = True

    def __init__(self, *, gateway_url: str, app_id: str, app_private_key: str, alipay_public_key: str,
                 seller_id: str = "", pay_type: str = "page") -> None:
        self.gateway_url = gateway_url
        self.app_id = app_id
        self.seller_id = seller_id
        self.pay_type = pay_type or "page"
        try:
            self.client = _HttpxAliPay(
                appid=app_id, app_private_key_string=_pem(app_private_key, kind="PRIVATE KEY"),
                alipay_public_key_string=_pem(alipay_public_key, kind="PUBLIC KEY"), sign_type="RSA2")
        except (ValueError, IndexError, TypeError) as error:
            raise ChannelMisconfiguredError("支付宝通道的应用私钥或支付宝公钥无法读取，请检查通道配置",
                                            code="channel_misconfigured") from error
        self.client._gateway = gateway_url

    def start(self, *, out_trade_no: str, amount: Decimal, subject: str, notify_url: str, return_url: str,
              client_ip: str = "") -> PaymentStart:
        total_amount = f"{amount:.2f}"
        subject = subject[:128] or out_trade_no
        if self.pay_type == "precreate":
            answer = self.client.api_alipay_trade_precreate(
                subject=subject, out_trade_no=out_trade_no, total_amount=total_amount, notify_url=notify_url)
            if answer.get("code") != SUCCESS_CODE or not answer.get("qr_code"):
                raise GatewayError("支付宝预下单失败：%(reason)s", params={"reason": _refusal(answer)},
                                   code="gateway_refused")
            return PaymentStart(qr_code=str(answer["qr_code"]))
        query = self.client.api_alipay_trade_page_pay(
            subject=subject, out_trade_no=out_trade_no, total_amount=total_amount, notify_url=notify_url,
            return_url=return_url)
        return PaymentStart(redirect_url=f"{self.gateway_url}?{query}")

    def verify_notification(self, notification: IncomingNotification) -> VerifiedNotification:
        params = dict(notification.params)
        signature = params.pop("sign", "")
        if not signature:
            raise NotificationRejectedError("支付宝通知缺少签名", code="unsigned")
        if params.pop("sign_type", "RSA2") != "RSA2":
            raise NotificationRejectedError("支付宝通知签名类型不是 RSA2", code="bad_sign_type")
        # Alipay signs the non-empty parameters only (its SDKs skip blanks); the SDK would include them.
        signed = {key: value for key, value in params.items() if isinstance(value, str) and value != ""}
        try:
            is_valid = self.client.verify(signed, signature)
        except (ValueError, TypeError, AliPayException):  # not base64, or a signature of the wrong length
            is_valid = False
        if not is_valid:
            raise NotificationRejectedError("支付宝通知签名校验失败", code="bad_signature")
        if params.get("app_id") != self.app_id:
            raise NotificationRejectedError(f"支付宝通知的 app_id「{params.get('app_id', '')}」不是本通道的应用",
                                            code="wrong_merchant")
        if self.seller_id and params.get("seller_id") != self.seller_id:
            raise NotificationRejectedError("支付宝通知的收款账号 seller_id 不是本通道配置的账号",
                                            code="wrong_seller")
        if not params.get("out_trade_no"):
            raise NotificationRejectedError("支付宝通知缺少商户订单号", code="missing_out_trade_no")
        amount = gateway_amount(params.get("total_amount", ""))
        if amount is None:
            raise NotificationRejectedError("支付宝通知的金额格式错误", code="bad_amount")
        trade_status = params.get("trade_status", "")
        if trade_status not in KNOWN_STATUSES:
            raise NotificationRejectedError(f"支付宝通知的交易状态「{trade_status}」无法识别", code="bad_status")
        return VerifiedNotification(
            out_trade_no=params["out_trade_no"], gateway_trade_no=params.get("trade_no", ""), amount=amount,
            is_paid=trade_status in PAID_STATUSES, merchant_id=params["app_id"],
            notification_id=params.get("notify_id", ""),
        )

    def return_is_authentic(self, params: dict[str, str]) -> bool:
        """The page-pay return (out_trade_no, total_amount, trade_no, app_id…, no trade_status): signed like a
        notification, over its non-empty parameters."""
        unsigned = dict(params)
        signature = unsigned.pop("sign", "")
        if not signature or unsigned.pop("sign_type", "RSA2") != "RSA2" or not unsigned.get("out_trade_no"):
            return False
        signed = {key: value for key, value in unsigned.items() if isinstance(value, str) and value != ""}
        try:
            is_valid = bool(self.client.verify(signed, signature))
        except (ValueError, TypeError, AliPayException):
            return False
        return is_valid and unsigned.get("app_id") == self.app_id

    def acknowledge(self) -> NotificationReply:
        return NotificationReply("success")

    def reject(self, reason: str) -> NotificationReply:
        return notification_reject(reason)

    def query(self, *, out_trade_no: str) -> QueryResult:
        """alipay.trade.query: the fallback for a lost notification. An unknown trade is an unpaid one."""
        answer = self.client.api_alipay_trade_query(out_trade_no=out_trade_no)
        if answer.get("code") != SUCCESS_CODE:
            if answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return QueryResult(is_paid=False, amount=None, gateway_trade_no="")
            raise GatewayError("支付宝查询失败：%(reason)s", params={"reason": _refusal(answer)},
                               code="gateway_refused")
        if answer.get("out_trade_no", out_trade_no) != out_trade_no:
            raise GatewayError("支付宝查询结果的订单号不符", code="gateway_bad_answer")
        return QueryResult(is_paid=answer.get("trade_status") in PAID_STATUSES,
                           amount=gateway_amount(str(answer.get("total_amount", ""))),
                           gateway_trade_no=str(answer.get("trade_no", "")))

    def close(self, *, out_trade_no: str) -> CloseResult:
        """alipay.trade.close: an unpaid trade becomes TRADE_CLOSED and its QR code or cashier can no longer be
        paid. No such trade (a page-pay cashier never opened) leaves nothing to close; ACQ.TRADE_STATUS_ERROR means
        the trade is no longer waiting for payment (paid meanwhile, or finished): the caller asks `query`."""
        answer = self.client.api_alipay_trade_close(out_trade_no=out_trade_no)
        if answer.get("code") == SUCCESS_CODE:
            if answer.get("out_trade_no", out_trade_no) != out_trade_no:
                raise GatewayError("支付宝关单结果的订单号不符", code="gateway_bad_answer")
            return CloseResult(status=CloseStatus.CLOSED, message="支付宝交易已关闭")
        sub_code = answer.get("sub_code")
        if sub_code == "ACQ.TRADE_NOT_EXIST":
            return CloseResult(status=CloseStatus.CLOSED, message="支付宝无此交易（买家未打开收银台），无需关闭")
        if sub_code == "ACQ.TRADE_STATUS_ERROR":
            return CloseResult(status=CloseStatus.NOT_OPEN, message=_refusal(answer))
        raise GatewayError("支付宝关单失败：%(reason)s", params={"reason": _refusal(answer)}, code="gateway_refused")

    def refund(self, *, out_trade_no: str, gateway_trade_no: str, refund_no: str, amount: Decimal,
               total_amount: Decimal, reason: str) -> RefundResult:
        """alipay.trade.refund. `out_request_no` = our refund number: sending it again (a retry after a timeout)
        refunds nothing more, Alipay answers the first result again."""
        extra: dict[str, str] = {"out_request_no": refund_no}
        if reason:
            extra["refund_reason"] = reason[:256]
        answer = self.client.api_alipay_trade_refund(
            refund_amount=f"{amount:.2f}", out_trade_no=out_trade_no, trade_no=gateway_trade_no or None, **extra)
        if answer.get("code") == SUCCESS_CODE:
            # fund_change "N": this out_request_no had already refunded the money; still a success, once.
            return RefundResult(status=RefundStatus.SUCCEEDED, gateway_refund_no=str(answer.get("trade_no", "")),
                                message=f"累计退款 ¥{answer.get('refund_fee', '')}，"
                                        f"本次{'有' if answer.get('fund_change') == 'Y' else '无'}资金变动")
        if answer.get("code") == "20000" or answer.get("sub_code") == "ACQ.SYSTEM_ERROR":
            # Unknown outcome: the same out_request_no may be sent again or queried later.
            return RefundResult(status=RefundStatus.PENDING, message=_refusal(answer))
        return RefundResult(status=RefundStatus.FAILED, message=_refusal(answer))

    def refund_query(self, *, out_trade_no: str, gateway_trade_no: str, refund_no: str) -> RefundResult:
        """alipay.trade.fastpay.refund.query by out_request_no. Alipay: an answer with the refund's data and
        refund_status empty or REFUND_SUCCESS is a refund made; no data means not refunded, and the refund may be
        sent again with the same out_request_no."""
        answer = self.client.api_alipay_trade_fastpay_refund_query(
            refund_no, trade_no=gateway_trade_no or None, out_trade_no=out_trade_no)
        if answer.get("code") != SUCCESS_CODE:
            if answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return RefundResult(status=RefundStatus.NOT_FOUND, message=_refusal(answer))
            raise GatewayError("支付宝退款查询失败：%(reason)s", params={"reason": _refusal(answer)},
                                   code="gateway_refused")
        if not answer.get("refund_amount"):
            return RefundResult(status=RefundStatus.NOT_FOUND, message="支付宝查无此退款请求")
        if answer.get("out_request_no", refund_no) != refund_no:
            raise GatewayError("支付宝退款查询结果的退款请求号不符", code="gateway_bad_answer")
        refund_status = str(answer.get("refund_status") or "")
        return RefundResult(
            status=RefundStatus.SUCCEEDED if refund_status in ("", "REFUND_SUCCESS") else RefundStatus.PENDING,
            gateway_refund_no=str(answer.get("trade_no", "")),
            message=f"已退款 ¥{answer.get('refund_amount')}" if refund_status != "REFUND_PROCESSING" else "退款处理中")


def build(channel: PaymentChannel) -> AlipayGateway:
    return AlipayGateway(gateway_url=channel.gateway_url, app_id=channel.merchant_id,
                         app_private_key=str(channel.merchant_key or ""),
                         alipay_public_key=channel.platform_public_key, seller_id=channel.app_id,
                         pay_type=channel.pay_type)
