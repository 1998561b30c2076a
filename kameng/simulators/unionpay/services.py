"""Writes of the simulated UnionPay (全渠道 gateway pay 5.1.0, seen from UnionPay's side): its certificate
authority, merchants, frontTransReq (the cashier), queryTrans, backTransReq (refunds) and the back-end
notification to backUrl.

Every request is authenticated by the merchant's RSA signature under the certId registered for it; every answer
and notification is signed with the simulator's signing certificate, sent in signPubKeyCert. The notification's
HTTP call goes through `notify_transport` (an httpx transport, `None` = the network) so the tests can route it
into the Django application in-process.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
from django.db import IntegrityError, transaction
from django.utils import timezone

from kameng.core.errors import ApplicationError, NotFoundError
from kameng.core.tasks import enqueue_after_commit
from kameng.simulators.notify import NotifyAttempt, NotifyPolicy, notify_deliver, notify_http
from kameng.simulators.unionpay.models import (
    SimulatedUnionPayAuthority,
    SimulatedUnionPayMerchant,
    SimulatedUnionPayStatus,
    SimulatedUnionPayTrade,
)
from kameng.simulators.unionpay.signing import Issued, authority_create, certificate_issue, merchant_signature_is_valid
from kameng.simulators.unionpay.signing import params_signed as _params_signed

logger = logging.getLogger(__name__)

VERSION = "5.1.0"
ORDER_ID = re.compile(r"^[A-Za-z0-9]{8,40}$")
TXN_TIME = re.compile(r"^\d{14}$")
FEN = re.compile(r"^[1-9]\d{0,11}$")
NOTIFY_MAX_ATTEMPTS = 5
# Retries after a failed attempt, growing like UnionPay's (unverified: its documents say only "several times").
NOTIFY_BACKOFF_SECONDS = (60, 120, 240, 480)
NOTIFY_TIMEOUT_SECONDS = 10.0
NOTIFY_POLICY = NotifyPolicy(backoff_seconds=NOTIFY_BACKOFF_SECONDS, max_attempts=NOTIFY_MAX_ATTEMPTS)
notify_transport: httpx.BaseTransport | None = None


class UnionPayRequestError(ApplicationError):
    """A request UnionPay refuses; `resp_code` is its answer code (e.g. 11 验签失败, 12 重复交易, 34 查无此交易)."""

    def __init__(self, message: str, *, resp_code: str) -> None:
        super().__init__(message, code=f"unionpay_{resp_code}")
        self.resp_code = resp_code


# --- the authority and merchants ---------------------------------------------------------------------------


def simulated_unionpay_authority() -> SimulatedUnionPayAuthority:
    """The simulator's certificates, made (with fresh keys) the first time they are needed."""
    authority = SimulatedUnionPayAuthority.objects.filter(name="default").first()
    if authority is not None:
        return authority
    made = authority_create()
    try:
        with transaction.atomic():
            return SimulatedUnionPayAuthority.objects.create(
                name="default", root_certificate=made.root.certificate_pem,
                middle_certificate=made.middle.certificate_pem, middle_private_key=made.middle.private_key_pem,
                signing_certificate=made.signing.certificate_pem, signing_private_key=made.signing.private_key_pem)
    except IntegrityError:  # made at the same time by another request
        return SimulatedUnionPayAuthority.objects.get(name="default")


def _signing(authority: SimulatedUnionPayAuthority) -> Issued:
    return Issued(private_key_pem=str(authority.signing_private_key), certificate_pem=authority.signing_certificate)


def unionpay_merchant_certificate_issue() -> Issued:
    """A merchant signing key and certificate issued by the simulator's intermediate (as UnionPay issues the
    .pfx): the key goes to the channel, the certificate to the merchant record."""
    authority = simulated_unionpay_authority()
    middle = Issued(private_key_pem=str(authority.middle_private_key), certificate_pem=authority.middle_certificate)
    return certificate_issue(common_name="041@SIM@kameng 演示商户@00000001", issuer=middle, is_authority=False)


def simulated_unionpay_merchant_create(*, mer_id: str, name: str, certificate_pem: str) -> SimulatedUnionPayMerchant:
    """Register a merchant (or replace the certificate and name of an existing merId)."""
    cert_id = Issued(private_key_pem="", certificate_pem=certificate_pem).serial_number
    merchant, _ = SimulatedUnionPayMerchant.objects.update_or_create(
        mer_id=mer_id, defaults={"name": name, "certificate": certificate_pem, "cert_id": cert_id, "is_active": True})
    return merchant


# --- requests ----------------------------------------------------------------------------------------------


def simulated_unionpay_request_authenticate(*, params: dict[str, str]) -> SimulatedUnionPayMerchant:
    """The common fields of every request: 5.1.0, signMethod 01, a known merchant and its certId, and the
    signature of that certificate's key over all fields."""
    for name in ("version", "encoding", "signMethod", "txnType", "txnSubType", "bizType", "accessType", "merId",
                 "certId", "signature"):
        if not params.get(name):
            raise UnionPayRequestError(f"缺少必填字段 {name}", resp_code="10")
    if params["version"] != VERSION or params["signMethod"] != "01":
        raise UnionPayRequestError("版本号或签名方法不支持（仅 5.1.0 / 01）", resp_code="10")
    merchant = SimulatedUnionPayMerchant.objects.filter(mer_id=params["merId"], is_active=True).first()
    if merchant is None:
        raise UnionPayRequestError("商户状态不正确（无此商户）", resp_code="30")
    if params["certId"] != merchant.cert_id:
        raise UnionPayRequestError("证书 ID 与商户签名证书不符", resp_code="11")
    if not merchant_signature_is_valid(params, merchant.certificate):
        raise UnionPayRequestError("验证签名失败", resp_code="11")
    return merchant


def _checked_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UnionPayRequestError(f"{name} 不是有效的 http(s) 地址", resp_code="10")
    return value


def _order_fields(params: dict[str, str]) -> tuple[str, str]:
    order_id, txn_time = params.get("orderId", ""), params.get("txnTime", "")
    if not ORDER_ID.match(order_id) or not TXN_TIME.match(txn_time):
        raise UnionPayRequestError("orderId 或 txnTime 格式错误", resp_code="10")
    return order_id, txn_time


def _amount(params: dict[str, str]) -> Decimal:
    if not FEN.match(params.get("txnAmt", "")) or params.get("currencyCode") != "156":
        raise UnionPayRequestError("txnAmt 或 currencyCode 格式错误", resp_code="10")
    return (Decimal(params["txnAmt"]) / 100).quantize(Decimal("0.01"))


def _new_query_id() -> str:
    return f"{timezone.localtime():%Y%m%d%H%M%S}{secrets.randbelow(10**7):07d}"


def simulated_unionpay_consume_open(*, params: dict[str, str]) -> SimulatedUnionPayTrade:
    """frontTransReq.do: a gateway-pay consume. The same order again (merId, orderId, txnTime) opens the same
    transaction; with another amount, or once it is over, it is refused as a duplicate."""
    merchant = simulated_unionpay_request_authenticate(params=params)
    if (params["txnType"], params["txnSubType"], params["bizType"]) != ("01", "01", "000201"):
        raise UnionPayRequestError("交易类型不是网关支付消费（01 / 01 / 000201）", resp_code="10")
    if params.get("channelType") not in ("07", "08") or params["accessType"] != "0":
        raise UnionPayRequestError("channelType 或 accessType 不支持", resp_code="10")
    order_id, txn_time = _order_fields(params)
    amount = _amount(params)
    back_url = _checked_url(params.get("backUrl", ""), "backUrl")
    front_url = _checked_url(params["frontUrl"], "frontUrl") if params.get("frontUrl") else ""
    trades = SimulatedUnionPayTrade.objects.select_related("merchant")
    existing = trades.filter(merchant=merchant, order_id=order_id, txn_time=txn_time).first()
    if existing is None:
        try:
            with transaction.atomic():
                return SimulatedUnionPayTrade.objects.create(
                    query_id=_new_query_id(), merchant=merchant, order_id=order_id, txn_time=txn_time, txn_type="01",
                    channel_type=params["channelType"], amount=amount, front_url=front_url, back_url=back_url)
        except IntegrityError:
            existing = trades.get(merchant=merchant, order_id=order_id, txn_time=txn_time)
    if existing.amount != amount or existing.txn_type != "01" or existing.status == SimulatedUnionPayStatus.FAILED:
        raise UnionPayRequestError("重复交易（同一订单号已有不同的交易）", resp_code="12")
    return existing


def simulated_unionpay_query(*, params: dict[str, str]) -> dict[str, str]:
    """queryTrans.do by orderId + txnTime (or queryId): respCode 00 with the transaction's origRespCode, or 34."""
    merchant = simulated_unionpay_request_authenticate(params=params)
    if params["txnType"] != "00":
        raise UnionPayRequestError("交易类型不是查询（00）", resp_code="10")
    trades = SimulatedUnionPayTrade.objects.filter(merchant=merchant)
    if params.get("queryId"):
        trade = trades.filter(query_id=params["queryId"]).first()
    else:
        order_id, txn_time = _order_fields(params)
        trade = trades.filter(order_id=order_id, txn_time=txn_time).first()
    if trade is None:
        raise UnionPayRequestError("查无此交易", resp_code="34")
    original_code, original_message = {
        SimulatedUnionPayStatus.SUCCEEDED: ("00", "成功[0000000]"),
        SimulatedUnionPayStatus.WAITING: ("05", "交易处理中，请稍后查询"),
        SimulatedUnionPayStatus.FAILED: ("01", "交易失败"),
    }[SimulatedUnionPayStatus(trade.status)]
    return {**_echo(params), "orderId": trade.order_id, "txnTime": trade.txn_time, "queryId": trade.query_id,
            "txnAmt": str(int(trade.amount * 100)), "currencyCode": "156", "origRespCode": original_code,
            "origRespMsg": original_message, **({"origQryId": trade.original.query_id} if trade.original else {})}


def simulated_unionpay_refund(*, params: dict[str, str]) -> dict[str, str]:
    """backTransReq.do, txnType 04: a refund of a paid consume (origQryId), never more than paid in all. The same
    refund again (its orderId + txnTime, amount and origQryId) refunds nothing more and answers the same."""
    merchant = simulated_unionpay_request_authenticate(params=params)
    if (params["txnType"], params["bizType"]) != ("04", "000201"):
        raise UnionPayRequestError("交易类型不是退货（04 / 000201）", resp_code="10")
    order_id, txn_time = _order_fields(params)
    amount = _amount(params)
    back_url = _checked_url(params.get("backUrl", ""), "backUrl")
    from kameng.simulators.unionpay.tasks import send_unionpay_notify

    with transaction.atomic():
        original = (SimulatedUnionPayTrade.objects.select_for_update()
                    .filter(merchant=merchant, query_id=params.get("origQryId", ""), txn_type="01").first())
        if original is None:
            raise UnionPayRequestError("原交易不存在", resp_code="35")
        previous = SimulatedUnionPayTrade.objects.filter(merchant=merchant, order_id=order_id,
                                                         txn_time=txn_time).first()
        if previous is not None:
            if previous.original_id != original.pk or previous.amount != amount:
                raise UnionPayRequestError("重复交易（同一订单号已有不同的交易）", resp_code="12")
            refund = previous
        else:
            if not original.is_paid:
                raise UnionPayRequestError("原交易状态不正确，不能退货", resp_code="36")
            if original.refunded_amount + amount > original.amount:
                raise UnionPayRequestError("退货金额超限", resp_code="36")
            now = timezone.now()
            refund = SimulatedUnionPayTrade.objects.create(
                query_id=_new_query_id(), merchant=merchant, order_id=order_id, txn_time=txn_time, txn_type="04",
                channel_type=params.get("channelType", ""), amount=amount, original=original, back_url=back_url,
                status=SimulatedUnionPayStatus.SUCCEEDED, finished_at=now)
            original.refunded_amount += amount
            original.save(update_fields=["refunded_amount"])
            enqueue_after_commit(send_unionpay_notify, refund.pk)
    return {**_echo(params), "queryId": refund.query_id, "origQryId": original.query_id}


def _echo(params: dict[str, str]) -> dict[str, str]:
    """The fields UnionPay answers back as it received them."""
    names = ("version", "encoding", "signMethod", "txnType", "txnSubType", "bizType", "accessType", "merId",
             "orderId", "txnTime", "txnAmt", "currencyCode")
    return {name: params[name] for name in names if params.get(name)}


def signed_answer(params: dict[str, str], *, resp_code: str, resp_msg: str) -> dict[str, str]:
    return _params_signed({**params, "respCode": resp_code, "respMsg": resp_msg},
                          _signing(simulated_unionpay_authority()))


# --- the buyer, the notification and the return ----------------------------------------------------------------


def simulated_unionpay_consume_finish(*, query_id: str, is_paid: bool) -> SimulatedUnionPayTrade:
    """The buyer paid (or the tester chose to fail it) at the cashier. A paid consume is notified to backUrl
    after commit; finishing a finished one changes nothing and sends nothing new."""
    from kameng.simulators.unionpay.tasks import send_unionpay_notify

    with transaction.atomic():
        trade = (SimulatedUnionPayTrade.objects.select_for_update().select_related("merchant")
                 .filter(query_id=query_id, txn_type="01").first())
        if trade is None:
            raise NotFoundError("交易不存在", code="unknown_trade")
        if trade.status != SimulatedUnionPayStatus.WAITING:
            return trade
        trade.status = SimulatedUnionPayStatus.SUCCEEDED if is_paid else SimulatedUnionPayStatus.FAILED
        trade.finished_at = timezone.now()
        trade.save(update_fields=["status", "finished_at"])
        if is_paid and trade.back_url:
            enqueue_after_commit(send_unionpay_notify, trade.pk)
    return trade


def simulated_unionpay_result_params(trade: SimulatedUnionPayTrade) -> dict[str, str]:
    """The signed result fields of a transaction, as UnionPay posts them to backUrl and (for a consume) to
    frontUrl."""
    is_paid = trade.is_paid
    params = {
        "version": VERSION, "encoding": "UTF-8", "signMethod": "01", "txnType": trade.txn_type,
        "txnSubType": "01" if trade.txn_type == "01" else "00", "bizType": "000201", "accessType": "0",
        "merId": trade.merchant.mer_id, "orderId": trade.order_id, "txnTime": trade.txn_time,
        "txnAmt": str(int(trade.amount * 100)), "currencyCode": "156", "queryId": trade.query_id,
        "respCode": "00" if is_paid else "01", "respMsg": "成功[0000000]" if is_paid else "交易失败",
        "traceNo": trade.query_id[-6:], "traceTime": trade.txn_time[4:],
        "settleAmt": str(int(trade.amount * 100)), "settleCurrencyCode": "156", "settleDate": trade.txn_time[4:8],
    }
    if trade.original is not None:
        params["origQryId"] = trade.original.query_id
    return _params_signed(params, _signing(simulated_unionpay_authority()))


@dataclass(frozen=True)
class FrontReturn:
    url: str
    fields: dict[str, str]


def simulated_unionpay_front_return(trade: SimulatedUnionPayTrade) -> FrontReturn | None:
    if not trade.front_url or trade.status == SimulatedUnionPayStatus.WAITING:
        return None
    return FrontReturn(url=trade.front_url, fields=simulated_unionpay_result_params(trade))


def _is_acknowledged(status_code: int, body: str) -> bool:
    return status_code == 200  # UnionPay takes HTTP 200 as delivered, whatever the body


def simulated_unionpay_notify_send(*, trade_id: int, is_forced: bool = False) -> NotifyAttempt:
    """Send one notification attempt of a finished transaction and record it. Never called inside a
    transaction; without `is_forced` nothing is sent once delivered or out of attempts."""
    trade = SimulatedUnionPayTrade.objects.select_related("merchant", "original").get(pk=trade_id)
    if not trade.is_paid or not trade.back_url:
        raise ApplicationError("交易未成功或没有后台通知地址，不能发送通知", code="not_paid")
    return notify_deliver(
        trade=trade, policy=NOTIFY_POLICY, is_forced=is_forced,
        send=lambda: notify_http("POST", trade.back_url, transport=notify_transport, timeout=NOTIFY_TIMEOUT_SECONDS,
                                 data=simulated_unionpay_result_params(trade)),
        is_acknowledged=_is_acknowledged, logger=logger, label="unionpay", reference=trade.query_id)
