"""微信支付 API v3, Native (scan a QR code) — PROTOCOLS.md §3.

Requests go through `wechatpayv3` (it signs them with the merchant key and checks the signature of every reply
with WeChat Pay's public key, so no platform certificate is downloaded). Notifications are checked here, on
`cryptography`, because the library's `callback()` answers only "None" and a rejected notification must say why:

1. the four `Wechatpay-*` headers are present, the serial names the WeChat key we hold, the timestamp is fresh,
   and the signature is not a `WECHATPAY/SIGNTEST/` probe;
2. SHA256withRSA over `timestamp\\nnonce\\nbody\\n` (the raw body) verifies with that key;
3. the resource decrypts with AEAD_AES_256_GCM (APIv3 key, its nonce, its associated data), which also proves
   nobody without the key changed it;
4. `mchid` and `appid` are ours; the amount (integer fen) is returned in yuan for the services to compare.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from wechatpayv3 import WeChatPay, WeChatPayType

from kameng.core.money import FEN, to_fen
from kameng.payments.gateways.base import (
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
)

if TYPE_CHECKING:
    from kameng.payments.models import PaymentChannel

DEFAULT_API_ROOT = "https://api.mch.weixin.qq.com"
REQUEST_TIMEOUT_SECONDS = (5, 15)  # connect, read
# WeChat's own SDKs refuse notifications whose timestamp is more than five minutes off.
NOTIFICATION_MAX_SKEW_SECONDS = 300
SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"
MAX_DESCRIPTION_BYTES = 127
MAX_REFUND_REASON_CHARACTERS = 80
# ABNORMAL: the refund reached a frozen or closed bank card and waits for the merchant to settle it in the WeChat
# Pay console (which may still pay the buyer): never taken as a failure that puts the money back in the wallet.
REFUND_STATUSES = {"SUCCESS": RefundStatus.SUCCEEDED, "PROCESSING": RefundStatus.PENDING,
                   "CLOSED": RefundStatus.FAILED, "ABNORMAL": RefundStatus.NEEDS_REVIEW}
ABNORMAL_MESSAGE = "微信支付退款异常（ABNORMAL）：用户银行卡作废或冻结，需在微信支付商户平台手动处理后再核实"


def _pem_public_key(text: str) -> rsa.RSAPublicKey:
    """WeChat Pay's public key from the channel: a PEM public key, bare base64 of one, or a platform certificate."""
    text = text.strip()
    if "BEGIN CERTIFICATE" in text:
        key: Any = x509.load_pem_x509_certificate(text.encode()).public_key()
    else:
        if "-----BEGIN" not in text:
            text = f"-----BEGIN PUBLIC KEY-----\n{text}\n-----END PUBLIC KEY-----"
        key = serialization.load_pem_public_key(text.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("WeChat Pay public key must be RSA")
    return key


def _json(text: str | bytes) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _yuan(fen: object) -> Decimal | None:
    if not isinstance(fen, int) or isinstance(fen, bool) or fen < 0:
        return None
    return (Decimal(fen) / 100).quantize(FEN)


def _refusal(data: dict[str, Any], status: int) -> str:
    """What WeChat Pay said when it refused: its own message, else the HTTP status."""
    return str(data.get("message") or f"HTTP {status}")[:200]


def notification_reject(reason: str) -> NotificationReply:
    # Any 4xx/5xx makes WeChat retry later; the JSON is what its documentation asks for.
    return NotificationReply(json.dumps({"code": "FAIL", "message": reason[:200]}, ensure_ascii=False),
                             status=400, content_type="application/json")


class WechatPayGateway:
    has_refund_query = True
    has_close = True

    def __init__(self, *, api_root: str, mchid: str, appid: str, merchant_private_key: str,
                 merchant_serial_no: str, platform_public_key: str, platform_key_id: str, api_v3_key: str) -> None:
        self.api_root = (api_root or DEFAULT_API_ROOT).rstrip("/")
        self.mchid = mchid
        self.appid = appid
        self.merchant_private_key = merchant_private_key
        self.merchant_serial_no = merchant_serial_no
        self.platform_public_key = platform_public_key
        self.platform_key_id = platform_key_id
        self.api_v3_key = api_v3_key

    # -- requests, through wechatpayv3 ----------------------------------------------------------------------------

    def _client(self) -> WeChatPay:
        try:
            public_key = _pem_public_key(self.platform_public_key)
            client = WeChatPay(
                wechatpay_type=WeChatPayType.NATIVE, mchid=self.mchid, private_key=self.merchant_private_key,
                cert_serial_no=self.merchant_serial_no, appid=self.appid, apiv3_key=self.api_v3_key,
                timeout=REQUEST_TIMEOUT_SECONDS, public_key_id=self.platform_key_id,
                public_key=public_key.public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
            )
        except Exception as error:
            raise GatewayError("微信支付通道配置错误（商户私钥或微信支付公钥无法加载）",
                               code="gateway_misconfigured") from error
        client._core._gate_way = self.api_root  # the library's API root: the real one, or the simulator
        return client

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        """Run one library call; network failures and replies whose signature fails become GatewayError."""
        client = self._client()
        try:
            status, text = getattr(client, method)(*args, **kwargs)
        except requests.RequestException as error:
            raise GatewayError("微信支付%(action)s请求失败：网络错误", params={"action": what},
                               code="gateway_unreachable") from error
        except Exception as error:  # the library raises bare Exception, e.g. when a reply's signature fails
            raise GatewayError("微信支付%(action)s失败：%(reason)s",
                               params={"action": what, "reason": str(error)[:100]},
                               code="gateway_bad_reply") from error
        return status, _json(text)

    def start(self, *, out_trade_no: str, amount: Decimal, subject: str, notify_url: str, return_url: str = "",
              client_ip: str = "") -> PaymentStart:
        description = subject.encode()[:MAX_DESCRIPTION_BYTES].decode(errors="ignore") or out_trade_no
        status, data = self._call(
            "下单", "pay", description=description, out_trade_no=out_trade_no,
            amount={"total": to_fen(amount), "currency": "CNY"}, notify_url=notify_url,
            scene_info={"payer_client_ip": client_ip} if client_ip else None, pay_type=WeChatPayType.NATIVE)
        code_url = data.get("code_url")
        if status != 200 or not isinstance(code_url, str) or not code_url:
            raise GatewayError("微信支付下单失败：%(reason)s", params={"reason": _refusal(data, status)},
                               code="gateway_refused", extra={"wechat_code": data.get("code", "")})
        return PaymentStart(qr_code=code_url)

    def query(self, *, out_trade_no: str) -> QueryResult:
        """GET /v3/pay/transactions/out-trade-no/{no}?mchid=: the fallback for a lost notification."""
        status, data = self._call("查单", "query", out_trade_no=out_trade_no)
        if status == 404 or data.get("code") == "ORDER_NOT_EXIST":
            return QueryResult(is_paid=False, amount=None, gateway_trade_no="")
        if status != 200:
            raise GatewayError("微信支付查单失败：%(reason)s", params={"reason": _refusal(data, status)},
                               code="gateway_refused")
        if data.get("mchid") != self.mchid or data.get("appid") != self.appid or \
                data.get("out_trade_no") != out_trade_no:
            raise GatewayError("微信支付查单应答与请求不符（商户号、appid 或订单号）", code="gateway_mismatch")
        amount = data.get("amount")
        return QueryResult(is_paid=data.get("trade_state") == "SUCCESS",
                           amount=_yuan(amount.get("total")) if isinstance(amount, dict) else None,
                           gateway_trade_no=str(data.get("transaction_id", "")))

    def close(self, *, out_trade_no: str) -> CloseResult:
        """POST /v3/pay/transactions/out-trade-no/{no}/close: 204 and the Native code can no longer be paid. No such
        order leaves nothing to close; ORDERPAID means it was paid meanwhile (the caller asks `query`)."""
        status, data = self._call("关单", "close", out_trade_no=out_trade_no)
        if status in (200, 204):
            return CloseResult(status=CloseStatus.CLOSED, message="微信支付订单已关闭")
        code = str(data.get("code", ""))
        if status == 404 or code == "ORDER_NOT_EXIST":
            return CloseResult(status=CloseStatus.CLOSED, message="微信支付无此订单，无需关闭")
        if code == "ORDERPAID":
            return CloseResult(status=CloseStatus.NOT_OPEN, message=str(data.get("message") or "订单已支付"))
        raise GatewayError("微信支付关单失败：%(reason)s", params={"reason": _refusal(data, status)},
                           code="gateway_refused")

    def refund(self, *, out_trade_no: str, gateway_trade_no: str, refund_no: str, amount: Decimal,
               total_amount: Decimal, reason: str) -> RefundResult:
        """POST /v3/refund/domestic/refunds. `refund_no` is out_refund_no: sending it again refunds once."""
        status, data = self._call(
            "退款", "refund", out_refund_no=refund_no, transaction_id=gateway_trade_no or None,
            out_trade_no=out_trade_no, reason=reason[:MAX_REFUND_REASON_CHARACTERS] or None,
            amount={"refund": to_fen(amount), "total": to_fen(total_amount), "currency": "CNY"})
        if status == 429 or status >= 500:
            # Busy or broken on WeChat's side: the outcome is unknown, the caller retries with the same refund_no.
            raise GatewayError("微信支付退款暂不可用：%(reason)s", params={"reason": _refusal(data, status)},
                               code="gateway_unavailable")
        if status != 200:
            return RefundResult(status=RefundStatus.FAILED, message=str(data.get("message") or f"HTTP {status}"))
        return self._refund_result(data)

    def refund_query(self, *, out_trade_no: str, gateway_trade_no: str, refund_no: str) -> RefundResult:
        """GET /v3/refund/domestic/refunds/{out_refund_no}: 404 RESOURCE_NOT_EXISTS means WeChat never took it."""
        status, data = self._call("退款查询", "query_refund", out_refund_no=refund_no)
        if status == 404 or data.get("code") == "RESOURCE_NOT_EXISTS":
            return RefundResult(status=RefundStatus.NOT_FOUND, message=str(data.get("message") or "退款单不存在"))
        if status != 200:
            raise GatewayError("微信支付退款查询失败：%(reason)s", params={"reason": _refusal(data, status)},
                               code="gateway_refused")
        if data.get("out_refund_no") != refund_no:
            raise GatewayError("微信支付退款查询应答与请求不符（退款单号）", code="gateway_mismatch")
        return self._refund_result(data)

    @staticmethod
    def _refund_result(data: dict[str, Any]) -> RefundResult:
        status = REFUND_STATUSES.get(str(data.get("status")), RefundStatus.PENDING)
        received = str(data.get("user_received_account", ""))
        message = ABNORMAL_MESSAGE if status == RefundStatus.NEEDS_REVIEW else received
        return RefundResult(status=status, gateway_refund_no=str(data.get("refund_id", "")), message=message)

    # -- notifications, on cryptography ---------------------------------------------------------------------------

    def _check_signature(self, headers: dict[str, str], body: bytes) -> None:
        timestamp = headers.get("wechatpay-timestamp", "")
        nonce = headers.get("wechatpay-nonce", "")
        signature = headers.get("wechatpay-signature", "")
        serial = headers.get("wechatpay-serial", "")
        if not (timestamp and nonce and signature and serial):
            raise NotificationRejectedError("通知缺少微信支付签名头（Wechatpay-Timestamp/Nonce/Signature/Serial）",
                                            code="unsigned")
        if signature.startswith(SIGNTEST_PREFIX):
            raise NotificationRejectedError("微信支付签名探测通知（WECHATPAY/SIGNTEST），按规定拒绝", code="sign_test")
        # Bytes, not str: compare_digest raises TypeError on a non-ASCII str, and the header comes from anyone.
        if not self.platform_key_id or not hmac.compare_digest(serial.upper().encode(),
                                                               self.platform_key_id.upper().encode()):
            raise NotificationRejectedError(f"通知的 Wechatpay-Serial「{serial[:64]}」不是本通道配置的微信支付公钥",
                                            code="unknown_serial")
        try:
            skew = abs(time.time() - int(timestamp))
        except ValueError as error:
            raise NotificationRejectedError("通知时间戳格式错误", code="bad_timestamp") from error
        if skew > NOTIFICATION_MAX_SKEW_SECONDS:
            raise NotificationRejectedError("通知时间戳已过期（超过 5 分钟），可能是重放", code="stale_timestamp")
        try:
            public_key = _pem_public_key(self.platform_public_key)
        except ValueError as error:
            raise NotificationRejectedError("通道的微信支付公钥无法加载", code="bad_platform_key") from error
        message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
        try:
            public_key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(),
                              hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError) as error:
            raise NotificationRejectedError("通知签名校验失败", code="bad_signature") from error

    def _decrypt(self, resource: object) -> dict[str, Any]:
        if not isinstance(resource, dict) or resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise NotificationRejectedError("通知 resource 缺失或加密算法不是 AEAD_AES_256_GCM", code="bad_resource")
        key = self.api_v3_key.encode()
        if len(key) != 32:
            raise NotificationRejectedError("通道的 APIv3 密钥不是 32 字节", code="bad_api_v3_key")
        try:
            plaintext = AESGCM(key).decrypt(str(resource.get("nonce", "")).encode(),
                                            base64.b64decode(str(resource.get("ciphertext", "")), validate=True),
                                            str(resource.get("associated_data") or "").encode())
        except (InvalidTag, binascii.Error, ValueError) as error:
            raise NotificationRejectedError("通知 resource 解密失败（APIv3 密钥不符或内容被篡改）",
                                            code="decrypt_failed") from error
        data = _json(plaintext)
        if not data:
            raise NotificationRejectedError("通知 resource 解密后不是 JSON 对象", code="bad_resource")
        return data

    def verify_notification(self, notification: IncomingNotification) -> VerifiedNotification:
        self._check_signature(notification.headers, notification.body)
        event = _json(notification.body)
        if not event:
            raise NotificationRejectedError("通知内容不是 JSON 对象", code="bad_body")
        transaction = self._decrypt(event.get("resource"))
        if transaction.get("mchid") != self.mchid:
            raise NotificationRejectedError("通知的商户号 mchid 与本通道不符", code="wrong_merchant")
        if transaction.get("appid") != self.appid:
            raise NotificationRejectedError("通知的 appid 与本通道不符", code="wrong_appid")
        out_trade_no = transaction.get("out_trade_no")
        if not isinstance(out_trade_no, str) or not out_trade_no:
            raise NotificationRejectedError("通知缺少商户订单号", code="missing_out_trade_no")
        amount = transaction.get("amount")
        yuan = _yuan(amount.get("total")) if isinstance(amount, dict) else None
        if yuan is None:
            raise NotificationRejectedError("通知金额 amount.total 缺失或不是整数（分）", code="bad_amount")
        return VerifiedNotification(
            out_trade_no=out_trade_no, gateway_trade_no=str(transaction.get("transaction_id", "")), amount=yuan,
            is_paid=event.get("event_type") == "TRANSACTION.SUCCESS" and transaction.get("trade_state") == "SUCCESS",
            merchant_id=self.mchid, notification_id=str(event.get("id", "")),
        )

    def return_is_authentic(self, params: dict[str, str]) -> bool:
        return False  # Native (QR) payment sends no browser back: nothing to trust

    def acknowledge(self) -> NotificationReply:
        return NotificationReply("", status=204)

    def reject(self, reason: str) -> NotificationReply:
        return notification_reject(reason)


def build(channel: PaymentChannel) -> WechatPayGateway:
    return WechatPayGateway(
        api_root=channel.gateway_url, mchid=channel.merchant_id, appid=channel.app_id,
        merchant_private_key=str(channel.merchant_key or ""), merchant_serial_no=channel.merchant_serial_no,
        platform_public_key=channel.platform_public_key, platform_key_id=channel.platform_key_id,
        api_v3_key=str(channel.api_v3_key or ""))
