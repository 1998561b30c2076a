"""易支付 epay V2 (RSA): the same canonical string as V1, signed SHA256withRSA (PROTOCOLS.md §1).

Signing: every parameter except `sign`, `sign_type` and blank values, sorted by key (ASCII), joined raw as
`k=v&k=v`; SHA256withRSA (PKCS#1 v1.5) with the merchant private key, base64. Replies and notifications are
verified with the platform public key over the raw strings received — `money=1` and `money=1.00` are different
signed texts — and amounts are compared as Decimal afterwards. Keys are exchanged as bare base64 DER; PEM is
accepted too.
"""

from __future__ import annotations

import base64
import binascii
import time
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import httpx
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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

REQUEST_TIMEOUT_SECONDS = 10.0
MAX_CLOCK_SKEW_SECONDS = 300
MAX_NAME_BYTES = 127
# pay_type "qrcode" asks for a code to scan (method=scan); `type` is still required by the protocol.
QR_PAY_TYPE = "qrcode"
QR_DEFAULT_TYPE = "alipay"
# The httpx transport every call goes through; None means the network. Tests route it into the Django app.
http_transport: httpx.BaseTransport | None = None


class KeyFormatError(ValueError):
    """An RSA key that is neither PEM nor bare base64 DER, or not RSA."""


def epay_v2_canonical(params: dict[str, Any]) -> str:
    """`k=v&…` over every field but sign/sign_type/blank ones. Integers in JSON replies count as their digits
    (PHP concatenates them so); arrays, objects, null and booleans are left out."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if key in ("sign", "sign_type") or isinstance(value, bool):
            continue
        text = str(value) if isinstance(value, int) else value
        if isinstance(text, str) and text != "":
            pairs.append((key, text))
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def _der(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise KeyFormatError("密钥不是有效的 base64") from error


@lru_cache(maxsize=32)
def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """A merchant private key: PEM (PKCS#8 or PKCS#1) or the bare base64 of its DER."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = serialization.load_der_private_key(_der(text), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise KeyFormatError("无法读取 RSA 私钥") from error
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFormatError("私钥不是 RSA 密钥")
    return key


@lru_cache(maxsize=32)
def load_public_key(text: str) -> rsa.RSAPublicKey:
    """A platform public key: PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`) or the bare base64 of its DER."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(_der(text))
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise KeyFormatError("无法读取 RSA 公钥") from error
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFormatError("公钥不是 RSA 密钥")
    return key


def epay_v2_sign(params: dict[str, Any], private_key: str) -> str:
    signature = load_private_key(private_key).sign(
        epay_v2_canonical(params).encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def epay_v2_signature_is_valid(params: dict[str, Any], public_key: str) -> bool:
    received = params.get("sign")
    if not isinstance(received, str) or not received:
        return False
    try:
        signature = base64.b64decode(received, validate=True)
        load_public_key(public_key).verify(
            signature, epay_v2_canonical(params).encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def notification_reject(reason: str) -> NotificationReply:
    # Anything but "success" makes the gateway retry; 400 tells a person reading logs it was refused.
    return NotificationReply("fail", status=400)


class EpayV2Gateway:
    has_refund_query = True
    has_close = False  # the protocol has no close call: a payment made after we closed ours is credited when notified

    def __init__(self, *, gateway_url: str, merchant_id: str, merchant_private_key: str, platform_public_key: str,
                 pay_type: str = "", transport: httpx.BaseTransport | None = None) -> None:
        if not (merchant_id.strip() and merchant_private_key.strip() and platform_public_key.strip()):
            raise ChannelMisconfiguredError("易支付 V2 通道缺少商户 ID、商户私钥或平台公钥，不能使用",
                                            code="channel_misconfigured")
        self.gateway_url = gateway_url.rstrip("/") + "/"
        self.merchant_id = merchant_id
        self.merchant_private_key = merchant_private_key
        self.platform_public_key = platform_public_key
        self.pay_type = pay_type
        self.transport = transport

    def signed(self, params: dict[str, str]) -> dict[str, str]:
        params = {**params, "timestamp": str(int(time.time()))}
        try:
            signature = epay_v2_sign(params, self.merchant_private_key)
        except KeyFormatError as error:
            raise GatewayError("易支付 V2 商户私钥无效：%(reason)s", params={"reason": str(error)},
                               code="bad_merchant_key") from error
        return {**params, "sign": signature, "sign_type": "RSA"}

    def _post(self, path: str, params: dict[str, str], *, action: str) -> dict[str, Any]:
        """POST a signed form; return the reply when `code` is 0 and its signature holds, raise otherwise."""
        try:
            with httpx.Client(transport=self.transport or http_transport, timeout=REQUEST_TIMEOUT_SECONDS) as client:
                response = client.post(self.gateway_url + path, data=self.signed(params))
            data = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise GatewayError("支付网关%(action)s失败：网络或应答错误", params={"action": action},
                               code="gateway_unreachable") from error
        if not isinstance(data, dict):
            raise GatewayError("支付网关%(action)s失败：应答格式错误", params={"action": action},
                               code="gateway_bad_reply")
        return data

    def _verified(self, data: dict[str, Any], *, action: str) -> dict[str, Any]:
        try:
            is_valid = epay_v2_signature_is_valid(data, self.platform_public_key)
        except KeyFormatError as error:
            raise GatewayError("易支付 V2 平台公钥无效：%(reason)s", params={"reason": str(error)},
                               code="bad_platform_key") from error
        if not is_valid:
            raise GatewayError("支付网关%(action)s应答签名校验失败", params={"action": action},
                               code="gateway_bad_signature")
        return data

    @staticmethod
    def _is_ok(data: dict[str, Any]) -> bool:
        return str(data.get("code")) == "0"

    def start(self, *, out_trade_no: str, amount: Decimal, subject: str, notify_url: str, return_url: str,
              client_ip: str = "") -> PaymentStart:
        is_qr = self.pay_type == QR_PAY_TYPE
        params = {
            "pid": self.merchant_id, "method": "scan" if is_qr else "web", "device": "pc",
            "type": QR_DEFAULT_TYPE if is_qr else self.pay_type, "out_trade_no": out_trade_no,
            "notify_url": notify_url, "return_url": return_url,
            "name": subject.encode()[:MAX_NAME_BYTES].decode(errors="ignore"), "money": f"{amount:.2f}",
            "clientip": client_ip or "127.0.0.1",
        }
        data = self._post("api/pay/create", {key: value for key, value in params.items() if value}, action="下单")
        if not self._is_ok(data):
            raise GatewayError("支付网关下单失败：%(reason)s", params={"reason": str(data.get("msg") or "未知错误")},
                               code="gateway_refused")
        data = self._verified(data, action="下单")
        trade_no, pay_type, pay_info = (str(data.get(name) or "") for name in ("trade_no", "pay_type", "pay_info"))
        if not pay_info:
            raise GatewayError("支付网关下单应答缺少 pay_info", code="gateway_bad_reply")
        if pay_type == "qrcode":
            return PaymentStart(qr_code=pay_info, gateway_trade_no=trade_no)
        if pay_type == "html":
            return PaymentStart(html=pay_info, gateway_trade_no=trade_no)
        return PaymentStart(redirect_url=pay_info, gateway_trade_no=trade_no)  # jump, urlscheme, …

    def verify_notification(self, notification: IncomingNotification) -> VerifiedNotification:
        params = notification.params
        if not params.get("sign"):
            raise NotificationRejectedError("通知缺少签名", code="unsigned")
        if params.get("sign_type", "RSA").upper() != "RSA":
            raise NotificationRejectedError("不支持的签名类型", code="bad_sign_type")
        try:
            is_valid = epay_v2_signature_is_valid(params, self.platform_public_key)
        except KeyFormatError as error:
            raise NotificationRejectedError("平台公钥配置无效，无法验证通知", code="bad_platform_key") from error
        if not is_valid:
            raise NotificationRejectedError("签名校验失败", code="bad_signature")
        timestamp = params.get("timestamp", "")
        is_number = timestamp.isascii() and timestamp.isdigit()  # "²".isdigit() is True, int("²") raises
        if not is_number or abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
            raise NotificationRejectedError("通知时间戳超出允许范围（±300 秒）", code="stale_timestamp")
        if params.get("pid") != self.merchant_id:
            raise NotificationRejectedError("商户号不匹配", code="wrong_merchant")
        amount = gateway_amount(params.get("money"))
        if amount is None:
            raise NotificationRejectedError("金额格式错误", code="bad_amount")
        if not params.get("out_trade_no"):
            raise NotificationRejectedError("缺少商户订单号", code="missing_out_trade_no")
        return VerifiedNotification(
            out_trade_no=params["out_trade_no"], gateway_trade_no=params.get("trade_no", ""), amount=amount,
            is_paid=params.get("trade_status") == "TRADE_SUCCESS", merchant_id=params["pid"],
        )

    def return_is_authentic(self, params: dict[str, str]) -> bool:
        if not params.get("sign") or params.get("sign_type", "RSA").upper() != "RSA" or not params.get("out_trade_no"):
            return False
        try:
            is_signed = epay_v2_signature_is_valid(params, self.platform_public_key)
        except KeyFormatError:
            return False
        return is_signed and params.get("pid") == self.merchant_id

    def acknowledge(self) -> NotificationReply:
        return NotificationReply("success")

    def reject(self, reason: str) -> NotificationReply:
        return notification_reject(reason)

    def query(self, *, out_trade_no: str) -> QueryResult:
        """`api/pay/query`: the fallback for a lost notification. Only a signed reply can say "paid"."""
        data = self._post("api/pay/query", {"pid": self.merchant_id, "out_trade_no": out_trade_no}, action="查询")
        if not self._is_ok(data):  # unknown order and the like: not paid as far as we can tell
            return QueryResult(is_paid=False, amount=None, gateway_trade_no="")
        data = self._verified(data, action="查询")
        if str(data.get("pid", self.merchant_id)) != self.merchant_id or data.get("out_trade_no") != out_trade_no:
            raise GatewayError("支付网关查询应答与请求不符", code="gateway_bad_reply")
        return QueryResult(is_paid=str(data.get("status")) == "1", amount=gateway_amount(str(data.get("money", ""))),
                           gateway_trade_no=str(data.get("trade_no") or ""))

    def close(self, *, out_trade_no: str) -> CloseResult:
        return CloseResult(status=CloseStatus.UNSUPPORTED, message="易支付 V2 没有关单接口")

    def refund(self, *, out_trade_no: str, gateway_trade_no: str, refund_no: str, amount: Decimal,
               total_amount: Decimal, reason: str) -> RefundResult:
        """`api/pay/refund`, idempotent by `out_refund_no`: asking again for the same refund never pays twice."""
        params = {"pid": self.merchant_id, "out_refund_no": refund_no, "money": f"{amount:.2f}"}
        if gateway_trade_no:
            params["trade_no"] = gateway_trade_no
        else:
            params["out_trade_no"] = out_trade_no
        data = self._post("api/pay/refund", params, action="退款请求")
        if not self._is_ok(data):
            return RefundResult(status=RefundStatus.FAILED, message=str(data.get("msg") or "退款失败"))
        data = self._verified(data, action="退款请求")
        if data.get("out_refund_no") != refund_no:
            raise GatewayError("支付网关退款应答与请求不符", code="gateway_bad_reply")
        return RefundResult(status=RefundStatus.SUCCEEDED, gateway_refund_no=str(data.get("refund_no") or ""),
                            message=str(data.get("msg") or ""))

    def refund_query(self, *, out_trade_no: str, gateway_trade_no: str, refund_no: str) -> RefundResult:
        """`api/pay/refundquery` by `out_refund_no`. An error answer (unsigned, such as 退款记录不存在) counts as
        not found: the refund is then sent again under the same out_refund_no, which the gateway pays at most once,
        and a refusal of that resend is never taken as a failure (the refund service holds it for review)."""
        data = self._post("api/pay/refundquery", {"pid": self.merchant_id, "out_refund_no": refund_no},
                          action="退款查询")
        if not self._is_ok(data):
            return RefundResult(status=RefundStatus.NOT_FOUND, message=str(data.get("msg") or "退款记录不存在"))
        data = self._verified(data, action="退款查询")
        if data.get("out_refund_no") != refund_no:
            raise GatewayError("支付网关退款查询应答与请求不符", code="gateway_bad_reply")
        return RefundResult(status=RefundStatus.SUCCEEDED if str(data.get("status")) == "1" else RefundStatus.PENDING,
                            gateway_refund_no=str(data.get("refund_no") or ""), message=str(data.get("msg") or ""))


def build(channel: PaymentChannel) -> EpayV2Gateway:
    return EpayV2Gateway(gateway_url=channel.gateway_url, merchant_id=channel.merchant_id,
                         merchant_private_key=str(channel.merchant_key or ""),
                         platform_public_key=channel.platform_public_key, pay_type=channel.pay_type)
