"""中国银联 全渠道 gateway pay (网关支付, bizType 000201), protocol version 5.1.0 with signMethod 01.

What travels (README "UnionPay" says which public document each fact was checked against):

- The buyer's browser POSTs a signed form to `frontTransReq.do` (we hand the storefront an auto-submitting form);
  UnionPay POSTs the signed result to `backUrl` (our notify URL) and sends the buyer back to `frontUrl` with a
  signed form too. `queryTrans.do` (txnType 00) and `backTransReq.do` (refund, txnType 04) are server calls whose
  answers are `k=v&k=v` text, signed the same way.
- Signing (5.1.0, signMethod 01): every field but `signature`, sorted by name, joined raw as `k=v` with `&`; the
  lower-case SHA-256 hex of that string is itself signed SHA256withRSA (PKCS#1 v1.5) with the merchant key whose
  certificate serial number (decimal) is `certId`; base64.
- Verifying: UnionPay puts its signing certificate in `signPubKeyCert`. It is trusted only if it chains to the
  root and intermediate certificates configured on the channel, is within its validity, and its owner (the third
  `@` part of its CN) is 中国银联股份有限公司 (or 00040000:SIGN, the test environment's, only when the channel
  points at the test gateway). Then its key must verify the signature.
- A transaction is named by merId + orderId + txnTime. kameng's payment and refund numbers begin with their
  creation time in Beijing time (kameng.core.ids.public_number), so txnTime is read back from the number: a
  query or a refund query never needs a stored timestamp.

Channel fields: `gateway_url` the API root (https://gateway.95516.com/gateway/api/, or the test environment's
https://gateway.test.95516.com/gateway/api/), `merchant_id` merId, `merchant_key` the signing key (PEM private key,
optionally followed by its certificate, or the base64 of the .pfx UnionPay issues, whose password is kept in
`api_v3_key`), `merchant_serial_no` certId (read from the certificate when empty), `platform_public_key` the
UnionPay root and intermediate certificates (PEM), `pay_type` channelType 07 (PC) or 08 (mobile).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from kameng.core.money import FEN, to_fen
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
)

if TYPE_CHECKING:
    from kameng.payments.models import PaymentChannel

logger = logging.getLogger(__name__)

PRODUCTION_API_ROOT = "https://gateway.95516.com/gateway/api/"
TEST_API_ROOT = "https://gateway.test.95516.com/gateway/api/"
TEST_GATEWAY_HOST = "gateway.test.95516.com"
VERSION = "5.1.0"
ENCODING = "UTF-8"
SIGN_METHOD_RSA = "01"
BIZ_TYPE_GATEWAY = "000201"
BIZ_TYPE_QUERY = "000000"
TXN_QUERY, TXN_CONSUME, TXN_REFUND = "00", "01", "04"
CURRENCY_CNY = "156"
ACCESS_DIRECT = "0"
CHANNEL_TYPES = ("07", "08")  # 07 PC (desktop browser), 08 mobile
UNIONPAY_OWNER = "中国银联股份有限公司"
TEST_ENVIRONMENT_OWNER = "00040000:SIGN"
SUCCESS = "00"
UNKNOWN_CODES = frozenset({"03", "04", "05"})  # 交易状态未明 / 处理中 / 超时: ask again later
NOT_FOUND_CODE = "34"  # 查无此交易
ORDER_ID = re.compile(r"[A-Za-z0-9]{8,40}", re.ASCII)
FEN_AMOUNT = re.compile(r"0|[1-9]\d{0,11}", re.ASCII)
NUMBER_TIME = re.compile(r"[A-Za-z]{1,4}(\d{12})\d*", re.ASCII)
SERVER_TIMEOUT_SECONDS = 15.0
MAX_CHAIN_LENGTH = 4
PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)
# An httpx transport for the server calls (`None` = the network); the tests route it into Django.
server_transport: httpx.BaseTransport | None = None


# --- signing, shared with nobody: the simulator has its own code for the other side --------------------------


def canonical(params: dict[str, str]) -> str:
    """Every field but `signature`, sorted by name, raw `k=v` joined by `&` (empty values included, as signed)."""
    return "&".join(f"{key}={value}" for key, value in sorted(params.items()) if key != "signature")


def signed_digest(params: dict[str, str]) -> bytes:
    """What 5.1.0 signs: the lower-case SHA-256 hex of the canonical string, as ASCII bytes."""
    return hashlib.sha256(canonical(params).encode("utf-8")).hexdigest().encode("ascii")


def signature_of(params: dict[str, str], private_key: rsa.RSAPrivateKey) -> str:
    return base64.b64encode(private_key.sign(signed_digest(params), padding.PKCS1v15(), hashes.SHA256())).decode()


def signature_is_valid(params: dict[str, str], public_key: rsa.RSAPublicKey) -> bool:
    try:
        raw = base64.b64decode(params.get("signature", ""), validate=True)
        public_key.verify(raw, signed_digest(params), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def answer_parse(text: str) -> dict[str, str]:
    """A server answer `k=v&k=v`, not URL-encoded: a value may hold `=` (base64, PEM) or a `{…}` group with `&`
    inside (reserved fields), so `&` splits only outside braces and each pair splits at its first `=`."""
    fields: dict[str, str] = {}
    depth, start = 0, 0
    for index, character in enumerate(text + "&"):
        if character == "{":
            depth += 1
        elif character == "}":
            depth = max(depth - 1, 0)
        elif character == "&" and depth == 0:
            pair = text[start:index]
            start = index + 1
            key, separator, value = pair.partition("=")
            if separator and key:
                fields[key.strip()] = value
    return fields


def _yuan(fen_text: str) -> Decimal | None:
    if not isinstance(fen_text, str) or FEN_AMOUNT.fullmatch(fen_text) is None:
        return None
    return (Decimal(fen_text) / 100).quantize(FEN)


def transaction_time_of(number: str) -> str:
    """txnTime (yyyyMMddHHmmss, Beijing time) of a kameng payment or refund number: the time it was created."""
    match = NUMBER_TIME.fullmatch(number)
    if match is None or ORDER_ID.fullmatch(number) is None:
        raise GatewayError("单号「%(number)s」不是银联可用的商户订单号（8–40 位字母数字，以创建时间开头）",
                           params={"number": number[:40]}, code="order_id_unsupported")
    stamp = "20" + match.group(1)
    try:
        datetime.strptime(stamp, "%Y%m%d%H%M%S")  # noqa: DTZ007 - only checks it is a real date and time
    except ValueError as error:
        raise GatewayError("单号「%(number)s」中的时间无效", params={"number": number[:40]},
                           code="order_id_unsupported") from error
    return stamp


# --- credentials and the certificates UnionPay signs with -------------------------------------------------------


@dataclass(frozen=True)
class MerchantCredentials:
    private_key: rsa.RSAPrivateKey
    cert_id: str


def _pem_blocks(text: str, *kinds: str) -> list[str]:
    return [block.group(0) for block in PEM_BLOCK.finditer(text) if block.group(1) in kinds]


def merchant_credentials_load(*, key_text: str, password: str = "", cert_id: str = "") -> MerchantCredentials:
    """The merchant signing key and its certId, from a PEM private key (plus, optionally, its certificate) or the
    base64 of a PKCS#12 .pfx; raises ValueError saying what is wrong."""
    text = key_text.strip()
    certificate: x509.Certificate | None = None
    secret = password.encode() if password else None
    try:
        if "-----BEGIN" in text:
            keys = _pem_blocks(text, "PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
            if not keys:
                raise ValueError("没有找到 PEM 私钥")
            key = serialization.load_pem_private_key(keys[0].encode(), password=secret)
            certificates = _pem_blocks(text, "CERTIFICATE")
            if certificates:
                certificate = x509.load_pem_x509_certificate(certificates[0].encode())
        else:
            loaded_key, certificate, _ = pkcs12.load_key_and_certificates(
                base64.b64decode("".join(text.split()), validate=True), secret)
            if loaded_key is None:
                raise ValueError("证书文件中没有私钥")
            key = loaded_key
    except TypeError as error:
        raise ValueError("私钥有密码保护，请填写证书密码") from error
    except binascii.Error as error:
        raise ValueError("既不是 PEM 私钥，也不是 base64 编码的 .pfx 证书") from error
    except ValueError as error:
        raise ValueError(f"无法读取签名私钥或证书（{str(error)[:80]}）") from error
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("签名私钥不是 RSA 私钥")
    if certificate is not None and certificate.public_key() != key.public_key():
        raise ValueError("签名证书与私钥不匹配")
    cert_id = cert_id.strip() or (str(certificate.serial_number) if certificate is not None else "")
    if not cert_id.isdigit():
        raise ValueError("缺少证书 ID（certId，签名证书序列号的十进制）：请填写，或随私钥附上签名证书")
    return MerchantCredentials(private_key=key, cert_id=cert_id)


def trust_bundle_load(text: str) -> list[x509.Certificate]:
    """The configured UnionPay root and intermediate certificates (PEM, several in one text)."""
    certificates = [x509.load_pem_x509_certificate(block.encode()) for block in _pem_blocks(text, "CERTIFICATE")]
    if not certificates:
        raise ValueError("没有找到 PEM 证书")
    if not any(certificate.subject == certificate.issuer for certificate in certificates):
        raise ValueError("缺少银联根证书（自签名）")
    return certificates


def certificate_owner(certificate: x509.Certificate) -> str:
    """The owner UnionPay writes in the third `@` part of the CN, e.g. `…@…@中国银联股份有限公司@…`."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    parts = str(names[0].value).split("@") if names else []
    return parts[2] if len(parts) > 2 else ""


def _is_current(certificate: x509.Certificate, now: datetime) -> bool:
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def signing_certificate_check(*, pem: str, trusted: list[x509.Certificate], allowed_owners: frozenset[str],
                              now: datetime | None = None) -> rsa.RSAPublicKey:
    """The public key of a signPubKeyCert that chains to a configured root, is current and belongs to UnionPay;
    raises ValueError saying why not."""
    now = now or datetime.now(UTC)
    try:
        leaf = x509.load_pem_x509_certificate(pem.strip().encode())
    except ValueError as error:
        raise ValueError("签名证书无法解析") from error
    if not _is_current(leaf, now):
        raise ValueError("签名证书不在有效期内")
    if certificate_owner(leaf) not in allowed_owners:
        raise ValueError(f"签名证书的所有者「{certificate_owner(leaf)[:40]}」不是中国银联")
    current = leaf
    for _ in range(MAX_CHAIN_LENGTH):
        issuer = next((candidate for candidate in trusted
                       if candidate.subject == current.issuer and _issued_by(current, candidate)), None)
        if issuer is None or not _is_current(issuer, now):
            break
        if issuer.subject == issuer.issuer:  # a configured root: the chain is complete
            key = leaf.public_key()
            if not isinstance(key, rsa.RSAPublicKey):
                raise ValueError("签名证书不是 RSA 证书")
            return key
        current = issuer
    raise ValueError("签名证书不是由所配置的银联根证书和中级证书签发的")


# --- the adapter --------------------------------------------------------------------------------------------


def notification_reject(reason: str) -> NotificationReply:
    # UnionPay takes HTTP 200 as delivered and sends again on anything else.
    return NotificationReply("fail", status=400)


class UnionPayGateway:
    has_refund_query = True
    has_close = False  # gateway pay has no close: an unpaid order simply times out at UnionPay

    def __init__(self, *, gateway_url: str, merchant_id: str, credentials: MerchantCredentials,
                 trusted: list[x509.Certificate], notify_url: str, channel_type: str = "07") -> None:
        self.api_root = gateway_url.rstrip("/") + "/"
        self.merchant_id = merchant_id
        self.credentials = credentials
        self.trusted = trusted
        self.notify_url = notify_url
        self.channel_type = channel_type if channel_type in CHANNEL_TYPES else CHANNEL_TYPES[0]
        is_test = urlsplit(self.api_root).hostname == TEST_GATEWAY_HOST
        self.allowed_owners = frozenset({UNIONPAY_OWNER, TEST_ENVIRONMENT_OWNER} if is_test else {UNIONPAY_OWNER})

    def _common(self, *, txn_type: str, txn_sub_type: str, biz_type: str) -> dict[str, str]:
        return {"version": VERSION, "encoding": ENCODING, "signMethod": SIGN_METHOD_RSA, "txnType": txn_type,
                "txnSubType": txn_sub_type, "bizType": biz_type, "accessType": ACCESS_DIRECT,
                "merId": self.merchant_id, "certId": self.credentials.cert_id}

    def _signed(self, params: dict[str, str]) -> dict[str, str]:
        unsigned = {key: value for key, value in params.items() if value != ""}
        return {**unsigned, "signature": signature_of(unsigned, self.credentials.private_key)}

    def _signature_problem(self, params: dict[str, str]) -> str | None:
        """None when `params` carry UnionPay's valid 5.1.0 RSA signature, else why not."""
        if not params.get("signature"):
            return "缺少签名"
        if params.get("signMethod") != SIGN_METHOD_RSA or params.get("version") != VERSION:
            return "签名方法或版本号不是 01 / 5.1.0"
        try:
            key = signing_certificate_check(pem=params.get("signPubKeyCert", ""), trusted=self.trusted,
                                            allowed_owners=self.allowed_owners)
        except ValueError as error:
            return str(error)
        return None if signature_is_valid(params, key) else "签名校验失败"

    # - the buyer's side -

    def start(self, *, out_trade_no: str, amount: Decimal, subject: str, notify_url: str, return_url: str,
              client_ip: str = "") -> PaymentStart:
        """The signed consume form the buyer's browser posts to frontTransReq.do (the storefront submits it)."""
        separator = "&" if "?" in return_url else "?"
        params = self._signed({
            **self._common(txn_type=TXN_CONSUME, txn_sub_type="01", biz_type=BIZ_TYPE_GATEWAY),
            "channelType": self.channel_type, "orderId": out_trade_no,
            "txnTime": transaction_time_of(out_trade_no), "txnAmt": str(to_fen(amount)), "currencyCode": CURRENCY_CNY,
            "frontUrl": f"{return_url}{separator}out_trade_no={out_trade_no}" if return_url else "",
            "backUrl": notify_url,
        })
        inputs = "".join(f'<input type="hidden" name="{escape(key)}" value="{escape(value)}">'
                         for key, value in params.items())
        html = (f'<form id="unionpay-pay" action="{escape(self.api_root + "frontTransReq.do")}" method="post" '
                f'accept-charset="UTF-8">{inputs}<button type="submit">前往银联支付</button></form>')
        return PaymentStart(html=html)

    def verify_notification(self, notification: IncomingNotification) -> VerifiedNotification:
        params = dict(notification.params)
        problem = self._signature_problem(params)
        if problem is not None:
            raise NotificationRejectedError("银联通知%(problem)s", params={"problem": problem}, code="bad_signature")
        if params.get("merId") != self.merchant_id:
            raise NotificationRejectedError("银联通知的商户号「%(merchant)s」不是本通道的商户",
                                            params={"merchant": params.get("merId", "")[:20]}, code="wrong_merchant")
        if not params.get("orderId"):
            raise NotificationRejectedError("银联通知缺少商户订单号", code="missing_out_trade_no")
        amount = _yuan(params.get("txnAmt", ""))
        if amount is None:
            raise NotificationRejectedError("银联通知的金额格式错误", code="bad_amount")
        if params.get("currencyCode", CURRENCY_CNY) != CURRENCY_CNY:
            raise NotificationRejectedError("银联通知的币种不是人民币", code="bad_currency")
        # A refund's notification (txnType 04) reaches the same URL: acknowledged, never credited.
        is_consume = params.get("txnType") == TXN_CONSUME
        return VerifiedNotification(
            out_trade_no=params["orderId"], gateway_trade_no=params.get("queryId", ""), amount=amount,
            is_paid=is_consume and params.get("respCode") == SUCCESS, merchant_id=params["merId"],
            notification_id=params.get("queryId", ""))

    def return_is_authentic(self, params: dict[str, str]) -> bool:
        """The frontUrl form: signed by UnionPay like a notification; `out_trade_no` is our own query parameter."""
        signed = {key: value for key, value in params.items() if key != "out_trade_no"}
        return (self._signature_problem(signed) is None and signed.get("merId") == self.merchant_id
                and signed.get("orderId") == params.get("out_trade_no"))

    def acknowledge(self) -> NotificationReply:
        return NotificationReply("ok")

    def reject(self, reason: str) -> NotificationReply:
        return notification_reject(reason)

    # - server calls -

    def _call(self, endpoint: str, params: dict[str, str]) -> dict[str, str]:
        url = self.api_root + endpoint
        try:
            with httpx.Client(transport=server_transport, timeout=SERVER_TIMEOUT_SECONDS) as client:
                response = client.post(url, data=self._signed(params),
                                       headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"})
        except httpx.ConnectError as error:
            raise RequestNotSentError("银联网关无法连接", code="gateway_unreachable") from error
        except httpx.HTTPError as error:
            raise GatewayError("银联网关没有应答", code="gateway_unreachable") from error
        if response.status_code != 200:
            raise GatewayError("银联网关返回 HTTP %(status)s", params={"status": response.status_code},
                               code="gateway_http_error")
        answer = answer_parse(response.content.decode("utf-8", errors="replace"))
        if not answer.get("respCode"):
            raise GatewayError("银联应答格式错误", code="gateway_bad_answer")
        if answer.get("signature"):
            problem = self._signature_problem(answer)
            if problem is not None:
                logger.warning("unionpay: %s answer refused: %s", endpoint, problem)
                raise GatewayError("银联应答验签失败：%(problem)s", params={"problem": problem},
                                   code="gateway_bad_signature")
        elif answer["respCode"] in (SUCCESS, NOT_FOUND_CODE):
            # Unsigned, only a refusal is believed: "done" or "no such transaction" must be UnionPay's own word.
            raise GatewayError("银联应答没有签名", code="gateway_bad_signature")
        return answer

    def _query(self, order_id: str) -> dict[str, str]:
        answer = self._call("queryTrans.do", {
            **self._common(txn_type=TXN_QUERY, txn_sub_type="00", biz_type=BIZ_TYPE_QUERY),
            "orderId": order_id, "txnTime": transaction_time_of(order_id)})
        if answer["respCode"] == SUCCESS and answer.get("orderId", order_id) != order_id:
            raise GatewayError("银联查询结果的订单号不符", code="gateway_bad_answer")
        return answer

    def query(self, *, out_trade_no: str) -> QueryResult:
        """queryTrans.do: the fallback for a lost notification. No such order (34) is an unpaid one; an answer
        still in doubt (03/04/05) is asked again later; any other origRespCode is a definite failure (is_failed:
        the payment is closed, a new one may be started)."""
        answer = self._query(out_trade_no)
        code = answer["respCode"]
        if code == NOT_FOUND_CODE:
            return QueryResult(is_paid=False, amount=None, gateway_trade_no="")
        if code != SUCCESS:
            raise GatewayError("银联查询失败：%(code)s %(message)s",
                               params={"code": code, "message": answer.get("respMsg", "")[:100]},
                               code="gateway_refused")
        original_code = answer.get("origRespCode", "")
        is_paid = original_code == SUCCESS
        # Any other origRespCode UnionPay gives a finished consume is its refusal: no money moved. A missing one
        # says nothing.
        is_failed = bool(original_code) and not is_paid and original_code not in UNKNOWN_CODES
        return QueryResult(is_paid=is_paid, amount=_yuan(answer.get("txnAmt", "")) if is_paid else None,
                           gateway_trade_no=answer.get("queryId", ""), is_failed=is_failed,
                           failure=f"{original_code} {answer.get('origRespMsg', '')[:80]}".strip() if is_failed else "")

    def close(self, *, out_trade_no: str) -> CloseResult:
        return CloseResult(status=CloseStatus.UNSUPPORTED, message="银联网关支付没有关单接口，未付款的订单到期自动失效")

    def refund(self, *, out_trade_no: str, gateway_trade_no: str, refund_no: str, amount: Decimal,
               total_amount: Decimal, reason: str) -> RefundResult:
        """backTransReq.do, txnType 04, naming the consume by origQryId. orderId = our refund number, so the
        refund can be queried (and sending it again is refused by UnionPay as a duplicate order)."""
        original = gateway_trade_no or self.query(out_trade_no=out_trade_no).gateway_trade_no
        if not original:
            return RefundResult(status=RefundStatus.FAILED, message="银联查无原消费交易，不能退款")
        answer = self._call("backTransReq.do", {
            **self._common(txn_type=TXN_REFUND, txn_sub_type="00", biz_type=BIZ_TYPE_GATEWAY),
            "channelType": self.channel_type, "orderId": refund_no, "txnTime": transaction_time_of(refund_no),
            "txnAmt": str(to_fen(amount)), "currencyCode": CURRENCY_CNY, "origQryId": original,
            "backUrl": self.notify_url})
        code, message = answer["respCode"], answer.get("respMsg", "")[:100]
        if code in UNKNOWN_CODES:
            return RefundResult(status=RefundStatus.PENDING, message=f"银联处理中（{code} {message}）")
        if code != SUCCESS:
            return RefundResult(status=RefundStatus.FAILED, message=f"银联拒绝退款：{code} {message}")
        # 00 is "accepted": the outcome is the refund transaction's own status, asked at once.
        try:
            return self.refund_query(out_trade_no=out_trade_no, gateway_trade_no=original, refund_no=refund_no)
        except GatewayError:
            return RefundResult(status=RefundStatus.PENDING, gateway_refund_no=answer.get("queryId", ""),
                                message="银联已受理退款，结果待查询")

    def refund_query(self, *, out_trade_no: str, gateway_trade_no: str, refund_no: str) -> RefundResult:
        """queryTrans.do on the refund's own orderId: origRespCode 00 refunded, 03/04/05 still in progress,
        34 never received (it may be sent again), anything else refused."""
        answer = self._query(refund_no)
        code = answer["respCode"]
        if code == NOT_FOUND_CODE:
            return RefundResult(status=RefundStatus.NOT_FOUND, message="银联查无此退款")
        if code != SUCCESS:
            raise GatewayError("银联退款查询失败：%(code)s %(message)s",
                               params={"code": code, "message": answer.get("respMsg", "")[:100]},
                               code="gateway_refused")
        original_code = answer.get("origRespCode", "")
        refunded = _yuan(answer.get("txnAmt", ""))
        if original_code == SUCCESS:
            return RefundResult(status=RefundStatus.SUCCEEDED, gateway_refund_no=answer.get("queryId", ""),
                                message=f"银联已退款 ¥{refunded}")
        if original_code in UNKNOWN_CODES:
            return RefundResult(status=RefundStatus.PENDING, message="银联退款处理中")
        return RefundResult(status=RefundStatus.FAILED, gateway_refund_no=answer.get("queryId", ""),
                            message=f"银联退款失败：{original_code} {answer.get('origRespMsg', '')[:100]}")


def build(channel: PaymentChannel) -> UnionPayGateway:
    from kameng.payments.links import payment_notify_url

    try:
        credentials = merchant_credentials_load(key_text=str(channel.merchant_key or ""),
                                                password=str(channel.api_v3_key or ""),
                                                cert_id=channel.merchant_serial_no)
        trusted = trust_bundle_load(channel.platform_public_key)
    except ValueError as error:
        raise ChannelMisconfiguredError("银联通道的签名证书或根证书配置有误：%(problem)s",
                                        params={"problem": str(error)}, code="channel_misconfigured") from error
    return UnionPayGateway(gateway_url=channel.gateway_url, merchant_id=channel.merchant_id, credentials=credentials,
                           trusted=trusted, notify_url=payment_notify_url(channel_code=channel.code),
                           channel_type=channel.pay_type)
