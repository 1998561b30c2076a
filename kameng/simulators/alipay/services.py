"""Writes of the simulated Alipay (PROTOCOLS.md §2, seen from Alipay's side): apps, the gateway.do methods
(page pay, precreate, query, refund, close), the buyer's payment and the asynchronous notification.

Every request is authenticated by the app's RSA2 signature; every synchronous answer and notification is signed
with the platform key made for the app. The notification's HTTP call goes through `notify_transport` (an httpx
transport, `None` = the network) so the tests can route it into the Django application in-process.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.db import IntegrityError, transaction
from django.utils import timezone

from kameng.core.errors import ApplicationError, NotFoundError
from kameng.core.tasks import enqueue_after_commit
from kameng.simulators.alipay.models import (
    SimulatedAlipayApp,
    SimulatedAlipayRefund,
    SimulatedAlipayTrade,
    SimulatedAlipayTradeStatus,
)
from kameng.simulators.alipay.signing import (
    KeyPair,
    is_public_key_valid,
    key_pair_generate,
    notification_signed,
    request_signature_valid,
    rsa2_sign,
)
from kameng.simulators.notify import (
    NotifyAttempt,
    NotifyPolicy,
    is_body_exactly_success,
    notify_deliver,
    notify_http,
    url_with_query,
)

logger = logging.getLogger(__name__)

PAGE_PAY = "alipay.trade.page.pay"
SERVER_METHODS = frozenset({"alipay.trade.precreate", "alipay.trade.query", "alipay.trade.refund",
                            "alipay.trade.fastpay.refund.query", "alipay.trade.close"})
OUT_TRADE_NO = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
AMOUNT = re.compile(r"^\d{1,9}(\.\d{1,2})?$")
MAX_AMOUNT = Decimal("100000000.00")
NOTIFY_MAX_ATTEMPTS = 8
# Alipay's schedule after a failed attempt: 4m, 10m, 10m, 1h, 2h, 6h, 15h (about 25 hours in all).
NOTIFY_BACKOFF_SECONDS = (240, 600, 600, 3600, 7200, 21600, 54000)
NOTIFY_TIMEOUT_SECONDS = 10.0
NOTIFY_POLICY = NotifyPolicy(backoff_seconds=NOTIFY_BACKOFF_SECONDS, max_attempts=NOTIFY_MAX_ATTEMPTS)
notify_transport: httpx.BaseTransport | None = None


class AlipayRequestError(ApplicationError):
    """A request Alipay refuses. `code`/`sub_code` are Alipay's: 40002 bad parameters (answered unsigned, like
    Alipay does for an unauthenticated request), 40004 a business refusal (answered signed)."""

    def __init__(self, message: str, *, code: str = "40004", sub_code: str = "ACQ.INVALID_PARAMETER") -> None:
        super().__init__(message, code=sub_code)
        self.alipay_code = code
        self.sub_code = sub_code


def alipay_app_key_pair_generate() -> KeyPair:
    """An app key pair for the demo and the tests: the private key goes to the channel, the public to the app."""
    return key_pair_generate()


def simulated_alipay_app_create(*, app_id: str, app_public_key: str, name: str) -> SimulatedAlipayApp:
    """Register an app with the simulated Alipay (or update the key and name of an existing app_id).

    A new app gets its own "Alipay" key pair and seller_id; the channel needs `app.platform_public_key` (支付宝公钥)
    and may check `app.seller_id`.
    """
    if not is_public_key_valid(app_public_key):
        raise ApplicationError("应用公钥不是有效的 RSA 公钥", code="bad_public_key")
    app = SimulatedAlipayApp.objects.filter(app_id=app_id).first()
    if app is not None:
        app.app_public_key, app.name, app.is_active = app_public_key, name, True
        app.save(update_fields=["app_public_key", "name", "is_active"])
        return app
    platform = key_pair_generate()
    return SimulatedAlipayApp.objects.create(
        app_id=app_id, name=name, app_public_key=app_public_key, platform_public_key=platform.public_key,
        platform_private_key=platform.private_key, seller_id=f"2088{secrets.randbelow(10**12):012d}")


def _new_trade_no() -> str:
    """Like Alipay's: the date, then 20 digits (28 in all)."""
    return f"{timezone.localtime():%Y%m%d}{secrets.randbelow(10**20):020d}"


def _checked_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AlipayRequestError(f"{name} 不是有效的 http(s) 地址", code="40002", sub_code="isv.invalid-parameter")
    return value


def _amount(text: Any, name: str) -> Decimal:
    text = str(text)
    if not AMOUNT.match(text):
        raise AlipayRequestError(f"{name} 格式错误", code="40002", sub_code="isv.invalid-parameter")
    try:
        amount = Decimal(text)
    except InvalidOperation as error:  # pragma: no cover - the pattern already refuses these
        raise AlipayRequestError(f"{name} 格式错误", code="40002", sub_code="isv.invalid-parameter") from error
    if amount <= 0 or amount > MAX_AMOUNT:
        raise AlipayRequestError(f"{name} 超出范围", sub_code="ACQ.TOTAL_FEE_EXCEED")
    return amount


@dataclass(frozen=True)
class AuthenticatedRequest:
    app: SimulatedAlipayApp
    method: str
    biz: dict[str, Any]
    params: dict[str, str]


def simulated_alipay_request_authenticate(*, params: dict[str, str]) -> AuthenticatedRequest:
    """The common parameters of a gateway.do request: known app, RSA2 signature by its key, biz_content JSON."""
    for name in ("app_id", "method", "sign", "sign_type", "timestamp", "biz_content"):
        if not params.get(name):
            raise AlipayRequestError(f"缺少参数 {name}", code="40001", sub_code=f"isv.missing-{name.replace('_', '-')}")
    app = SimulatedAlipayApp.objects.filter(app_id=params["app_id"], is_active=True).first()
    if app is None:
        raise AlipayRequestError("无效的 AppID 参数", code="40002", sub_code="isv.invalid-app-id")
    if params["sign_type"] != "RSA2":
        raise AlipayRequestError("签名类型无效", code="40002", sub_code="isv.invalid-signature-type")
    if not request_signature_valid(params, app.app_public_key):
        raise AlipayRequestError("验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配", code="40002",
                                 sub_code="isv.invalid-signature")
    method = params["method"]
    if method != PAGE_PAY and method not in SERVER_METHODS:
        raise AlipayRequestError(f"不存在的方法名 {method}", code="40002", sub_code="isv.invalid-method")
    try:
        biz = json.loads(params["biz_content"])
    except ValueError as error:
        raise AlipayRequestError("biz_content 不是 JSON", code="40002", sub_code="isv.invalid-parameter") from error
    if not isinstance(biz, dict):
        raise AlipayRequestError("biz_content 不是 JSON 对象", code="40002", sub_code="isv.invalid-parameter")
    return AuthenticatedRequest(app=app, method=method, biz=biz, params=params)


def simulated_alipay_trade_open(*, request: AuthenticatedRequest) -> SimulatedAlipayTrade:
    """page.pay / precreate: open the trade. The same request again returns the same trade; the same
    out_trade_no with another amount, or for a closed trade, is refused."""
    biz = request.biz
    out_trade_no = str(biz.get("out_trade_no", ""))
    if not OUT_TRADE_NO.match(out_trade_no):
        raise AlipayRequestError("out_trade_no 格式错误", code="40002", sub_code="isv.invalid-parameter")
    subject = str(biz.get("subject", ""))
    if not subject or len(subject) > 256:
        raise AlipayRequestError("subject 为空或过长", code="40002", sub_code="isv.invalid-parameter")
    amount = _amount(biz.get("total_amount", ""), "total_amount")
    if request.method == PAGE_PAY and biz.get("product_code") != "FAST_INSTANT_TRADE_PAY":
        raise AlipayRequestError("product_code 必须是 FAST_INSTANT_TRADE_PAY", code="40002",
                                 sub_code="isv.invalid-parameter")
    notify_url = request.params.get("notify_url", "")
    if notify_url:
        _checked_url(notify_url, "notify_url")
    return_url = request.params.get("return_url", "")
    if return_url:
        _checked_url(return_url, "return_url")
    trades = SimulatedAlipayTrade.objects.select_related("app")
    existing = trades.filter(app=request.app, out_trade_no=out_trade_no).first()
    if existing is None:
        try:
            with transaction.atomic():
                return SimulatedAlipayTrade.objects.create(
                    trade_no=_new_trade_no(), app=request.app, out_trade_no=out_trade_no, method=request.method,
                    subject=subject, total_amount=amount, notify_url=notify_url, return_url=return_url)
        except IntegrityError:  # the same order sent twice at once: the other request created it
            existing = trades.get(app=request.app, out_trade_no=out_trade_no)
    if existing.total_amount != amount:
        raise AlipayRequestError("交易信息被篡改（同一订单号金额不同）", sub_code="ACQ.CONTEXT_INCONSISTENT")
    if existing.status == SimulatedAlipayTradeStatus.TRADE_CLOSED:
        raise AlipayRequestError("交易已关闭", sub_code="ACQ.TRADE_HAS_CLOSE")
    return existing


def _trade_of(request: AuthenticatedRequest, *, for_update: bool = False) -> SimulatedAlipayTrade:
    trades = SimulatedAlipayTrade.objects.select_related("app").filter(app=request.app)
    if for_update:
        trades = trades.select_for_update()
    out_trade_no, trade_no = str(request.biz.get("out_trade_no", "")), str(request.biz.get("trade_no", ""))
    trade = None
    if trade_no:
        trade = trades.filter(trade_no=trade_no).first()
    elif out_trade_no:
        trade = trades.filter(out_trade_no=out_trade_no).first()
    else:
        raise AlipayRequestError("out_trade_no 和 trade_no 不能同时为空", code="40002",
                                 sub_code="isv.invalid-parameter")
    if trade is None:
        raise AlipayRequestError("交易不存在", sub_code="ACQ.TRADE_NOT_EXIST")
    return trade


def _money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def simulated_alipay_query(*, request: AuthenticatedRequest) -> dict[str, Any]:
    trade = _trade_of(request)
    answer: dict[str, Any] = {
        "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "trade_status": trade.status,
        "total_amount": _money(trade.total_amount),
    }
    if trade.paid_at is not None:
        answer.update(buyer_user_id=trade.buyer_id, buyer_pay_amount=_money(trade.total_amount),
                      receipt_amount=_money(trade.total_amount),
                      send_pay_date=f"{timezone.localtime(trade.paid_at):%Y-%m-%d %H:%M:%S}")
    return answer


def simulated_alipay_refund(*, request: AuthenticatedRequest) -> dict[str, Any]:
    """alipay.trade.refund: never more than paid in total; the same out_request_no refunds once (a repeat answers
    the same refund with fund_change "N"), and with another amount it is refused."""
    amount = _amount(request.biz.get("refund_amount", ""), "refund_amount")
    out_request_no = str(request.biz.get("out_request_no", "")) or str(request.biz.get("out_trade_no", ""))
    if not out_request_no or len(out_request_no) > 64:
        raise AlipayRequestError("out_request_no 格式错误", code="40002", sub_code="isv.invalid-parameter")
    with transaction.atomic():
        trade = _trade_of(request, for_update=True)
        previous = trade.refunds.filter(out_request_no=out_request_no).first()
        if previous is not None:
            if previous.refund_amount != amount:
                raise AlipayRequestError("同一退款请求号的退款金额不一致", sub_code="ACQ.REFUND_AMT_RESTRICTION")
            is_fund_changed = False
        else:
            if not trade.is_paid:
                raise AlipayRequestError("交易状态不合法，不能退款", sub_code="ACQ.TRADE_STATUS_ERROR")
            if trade.refunded_amount + amount > trade.total_amount:
                raise AlipayRequestError("退款金额超限", sub_code="ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
            SimulatedAlipayRefund.objects.create(trade=trade, out_request_no=out_request_no, refund_amount=amount,
                                                 reason=str(request.biz.get("refund_reason", ""))[:256])
            trade.refunded_amount += amount
            trade.save(update_fields=["refunded_amount"])
            is_fund_changed = True
    return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "buyer_user_id": trade.buyer_id,
            "fund_change": "Y" if is_fund_changed else "N", "refund_fee": _money(trade.refunded_amount),
            "gmt_refund_pay": f"{timezone.localtime():%Y-%m-%d %H:%M:%S}"}


def simulated_alipay_refund_query(*, request: AuthenticatedRequest) -> dict[str, Any]:
    """alipay.trade.fastpay.refund.query: like Alipay, a refund request it never took answers 10000 without the
    refund's fields (its documentation: nothing found means not refunded, and the refund may be sent again with
    the same out_request_no)."""
    out_request_no = str(request.biz.get("out_request_no", ""))
    if not out_request_no:
        raise AlipayRequestError("缺少 out_request_no", code="40002", sub_code="isv.missing-parameter")
    trade = _trade_of(request)
    answer: dict[str, Any] = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}
    refund = trade.refunds.filter(out_request_no=out_request_no).first()
    if refund is not None:
        answer.update(out_request_no=refund.out_request_no, refund_amount=_money(refund.refund_amount),
                      total_amount=_money(trade.total_amount), refund_status="REFUND_SUCCESS",
                      gmt_refund_pay=f"{timezone.localtime(refund.created_at):%Y-%m-%d %H:%M:%S}")
    return answer


def simulated_alipay_close(*, request: AuthenticatedRequest) -> dict[str, Any]:
    with transaction.atomic():
        trade = _trade_of(request, for_update=True)
        if trade.is_paid:
            raise AlipayRequestError("交易已支付，不能关闭", sub_code="ACQ.TRADE_STATUS_ERROR")
        trade.status = SimulatedAlipayTradeStatus.TRADE_CLOSED
        trade.save(update_fields=["status"])
    return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}


def simulated_alipay_precreate(*, request: AuthenticatedRequest, qr_url: str) -> dict[str, Any]:
    """`qr_url` maps a trade number to the absolute URL of its scan page (the QR code's content)."""
    trade = simulated_alipay_trade_open(request=request)
    return {"out_trade_no": trade.out_trade_no, "qr_code": qr_url.replace("TRADE_NO", trade.trade_no)}


def signed_answer(*, app: SimulatedAlipayApp | None, method: str, answer: dict[str, Any]) -> str:
    """The JSON body of a server API answer: `{"<method>_response": {...}, "sign": "..."}`, the signature over the
    exact text of the inner object (that is what the merchant verifies). Without an app it goes unsigned."""
    inner = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
    response_key = method.replace(".", "_") + "_response" if method else "error_response"
    body = f'{{"{response_key}":{inner}'
    if app is not None:
        body += f',"sign":"{rsa2_sign(inner, app.signing_key)}"'
    return body + "}"


def simulated_alipay_trade_pay(*, trade_no: str) -> SimulatedAlipayTrade:
    """The buyer pressed 确认支付: mark the trade paid and, after commit, start notifying the merchant.

    Paying an already paid trade changes nothing and sends nothing new.
    """
    from kameng.simulators.alipay.tasks import send_alipay_notify

    with transaction.atomic():
        trade = (SimulatedAlipayTrade.objects.select_for_update().select_related("app")
                 .filter(trade_no=trade_no).first())
        if trade is None:
            raise NotFoundError("交易不存在", code="unknown_trade")
        if trade.is_paid:
            return trade
        if trade.status == SimulatedAlipayTradeStatus.TRADE_CLOSED:
            raise ApplicationError("交易已关闭，不能支付", code="trade_closed")
        trade.status = SimulatedAlipayTradeStatus.TRADE_SUCCESS
        trade.paid_at = timezone.now()
        trade.buyer_id = f"2088{secrets.randbelow(10**12):012d}"
        trade.notify_id = secrets.token_hex(16)
        trade.save(update_fields=["status", "paid_at", "buyer_id", "notify_id"])
        if trade.notify_url:
            enqueue_after_commit(send_alipay_notify, trade.pk)
    return trade


def _time(value: Any) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S}" if value else ""


def simulated_alipay_notify_params(trade: SimulatedAlipayTrade) -> dict[str, str]:
    """The signed form of a trade's asynchronous notification (`notify_id` stays the same across retries)."""
    amount = _money(trade.total_amount)
    params = {
        "notify_time": _time(timezone.now()), "notify_type": "trade_status_sync", "notify_id": trade.notify_id,
        "charset": "utf-8", "version": "1.0", "app_id": trade.app.app_id, "auth_app_id": trade.app.app_id,
        "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "seller_id": trade.app.seller_id,
        "buyer_id": trade.buyer_id, "trade_status": trade.status, "total_amount": amount,
        "receipt_amount": amount, "buyer_pay_amount": amount, "invoice_amount": amount, "subject": trade.subject,
        "gmt_create": _time(trade.created_at), "gmt_payment": _time(trade.paid_at),
        "fund_bill_list": json.dumps([{"amount": amount, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")),
    }
    return notification_signed({key: value for key, value in params.items() if value}, trade.app.signing_key)


def simulated_alipay_return_url(trade: SimulatedAlipayTrade) -> str:
    """Where the browser goes after paying: return_url with the signed synchronous parameters appended."""
    params = {
        "charset": "utf-8", "out_trade_no": trade.out_trade_no, "method": "alipay.trade.page.pay.return",
        "total_amount": _money(trade.total_amount), "trade_no": trade.trade_no, "auth_app_id": trade.app.app_id,
        "version": "1.0", "app_id": trade.app.app_id, "seller_id": trade.app.seller_id,
        "timestamp": _time(timezone.now()),
    }
    return url_with_query(trade.return_url, notification_signed(params, trade.app.signing_key))


def _notify_post(url: str, params: dict[str, str]) -> tuple[int, str]:
    return notify_http("POST", url, transport=notify_transport, timeout=NOTIFY_TIMEOUT_SECONDS, data=params)


def simulated_alipay_notify_send(*, trade_id: int, is_forced: bool = False) -> NotifyAttempt:
    """Send one notification attempt for a paid trade and record it. Never called inside a transaction.

    Without `is_forced` nothing is sent once the merchant has answered `success` or the attempts are used up,
    so a task delivered twice sends no extra notification.
    """
    trade = SimulatedAlipayTrade.objects.select_related("app").get(pk=trade_id)
    if not trade.is_paid or not trade.notify_url:
        raise ApplicationError("交易尚未支付或没有通知地址，不能发送通知", code="not_paid")
    return notify_deliver(
        trade=trade, policy=NOTIFY_POLICY, is_forced=is_forced,
        send=lambda: _notify_post(trade.notify_url, simulated_alipay_notify_params(trade)),
        is_acknowledged=is_body_exactly_success, logger=logger, label="alipay", reference=trade.trade_no)
