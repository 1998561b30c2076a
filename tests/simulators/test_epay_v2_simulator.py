"""The simulated 易支付 V2 gateway over HTTP: merchants and their platform keys, api/pay/create|query|refund|
refundquery, the cashier and the signed notify it sends. Requests here are signed by hand with the simulator's own
signing module and a merchant key pair generated for the run."""

from __future__ import annotations

import re
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import Client
from pytest_django import DjangoCaptureOnCommitCallbacks as CaptureOnCommit

from kameng.simulators.epay_v2 import services as simulator_services
from kameng.simulators.epay_v2.models import SimulatedEpayV2Merchant, SimulatedEpayV2Trade, SimulatedEpayV2TradeStatus
from kameng.simulators.epay_v2.services import (
    NOTIFY_MAX_ATTEMPTS,
    epay_v2_merchant_key_pair_generate,
    simulated_epay_v2_merchant_create,
)
from kameng.simulators.epay_v2.signing import canonical_string, is_signature_valid, with_signature
from tests.payments.support import failing_transport, query_params, recording_transport

pytestmark = pytest.mark.django_db

PID = "2001"
API = "/sim/epay-v2/api/pay/"
NOTIFY_URL = "http://shop.example/pay/notify/epay-v2/"
RETURN_URL = "http://shop.example/wallet/topups/return/"
MERCHANT_KEYS = epay_v2_merchant_key_pair_generate()
STRANGER_KEYS = epay_v2_merchant_key_pair_generate()


@pytest.fixture
def merchant() -> SimulatedEpayV2Merchant:
    return simulated_epay_v2_merchant_create(pid=PID, merchant_public_key=MERCHANT_KEYS.public_key, name="演示卡盟")


@pytest.fixture
def replies(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Notifications are answered "success" and recorded instead of going out to the network."""
    transport, seen = recording_transport(["success"])
    monkeypatch.setattr(simulator_services, "notify_transport", transport)
    return seen


def _signed(*, private_key: str = MERCHANT_KEYS.private_key, **fields: str) -> dict[str, str]:
    params = {"pid": PID, "method": "web", "device": "pc", "type": "alipay", "out_trade_no": "T1",
              "notify_url": NOTIFY_URL, "return_url": RETURN_URL, "name": "钱包充值 ¥10.00", "money": "10.00",
              "clientip": "203.0.113.7", "timestamp": str(int(time.time())), **fields}
    return with_signature({name: value for name, value in params.items() if value}, private_key)


def _call(client: Client, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
    response = client.post(API + endpoint, params)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


def _is_platform_signed(data: dict[str, Any], merchant: SimulatedEpayV2Merchant) -> bool:
    return data.get("sign_type") == "RSA" and is_signature_valid(data, merchant.platform_public_key)


def _create(client: Client, **fields: str) -> dict[str, Any]:
    return _call(client, "create", _signed(**fields))


def _pay(client: Client, trade_no: str) -> Any:
    cashier = client.get(f"/sim/epay-v2/cashier/{trade_no}/")
    match = re.search(r'<form method="post" action="([^"]+)"', cashier.content.decode())
    assert match
    return client.post(match.group(1))


def _request(**fields: str) -> dict[str, str]:
    return with_signature({"pid": PID, "timestamp": str(int(time.time())), **fields}, MERCHANT_KEYS.private_key)


# --- merchants and keys ---------------------------------------------------------------------------------------

def test_merchant_gets_a_platform_key_pair_with_the_private_half_encrypted(merchant: SimulatedEpayV2Merchant) -> None:
    assert "-----" not in merchant.platform_public_key
    assert re.fullmatch(r"[A-Za-z0-9+/]+=*", merchant.platform_public_key)
    signed = with_signature({"a": "1"}, merchant.platform_signing_key)
    assert is_signature_valid(signed, merchant.platform_public_key)
    with connection.cursor() as cursor:
        cursor.execute("SELECT platform_private_key FROM sim_epay_v2_simulatedepayv2merchant")
        (stored,) = cursor.fetchone()
    assert merchant.platform_signing_key.encode() not in bytes(stored)
    assert merchant.platform_signing_key[:40].encode() not in bytes(stored)


def test_registering_a_pid_again_keeps_its_platform_keys(merchant: SimulatedEpayV2Merchant) -> None:
    again = simulated_epay_v2_merchant_create(pid=PID, merchant_public_key=STRANGER_KEYS.public_key, name="新名字")

    assert again.pk == merchant.pk
    assert again.platform_public_key == merchant.platform_public_key
    assert (again.merchant_public_key, again.name) == (STRANGER_KEYS.public_key, "新名字")
    assert SimulatedEpayV2Merchant.objects.count() == 1


def test_each_merchant_has_its_own_platform_keys(merchant: SimulatedEpayV2Merchant) -> None:
    other = simulated_epay_v2_merchant_create(pid="2002", merchant_public_key=STRANGER_KEYS.public_key, name="乙")

    assert other.platform_public_key != merchant.platform_public_key


# --- api/pay/create -------------------------------------------------------------------------------------------

def test_create_answers_a_signed_cashier_url(client: Client, merchant: SimulatedEpayV2Merchant) -> None:
    data = _create(client, param="user=7")

    trade = SimulatedEpayV2Trade.objects.get()
    assert data["code"] == 0
    assert (data["trade_no"], data["pay_type"]) == (trade.trade_no, "jump")
    assert data["pay_info"] == f"http://testserver/sim/epay-v2/cashier/{trade.trade_no}/"
    assert re.fullmatch(r"\d{10}", data["timestamp"])
    assert _is_platform_signed(data, merchant)
    assert canonical_string(data).startswith("code=0&pay_info=")
    assert not _is_platform_signed({**data, "pay_info": "http://evil.example/"}, merchant)
    assert (trade.out_trade_no, trade.money, trade.money_raw, trade.method, trade.type, trade.param) == (
        "T1", Decimal("10.00"), "10.00", "web", "alipay", "user=7")
    assert trade.status == SimulatedEpayV2TradeStatus.PENDING


def test_scan_method_answers_a_qr_code(client: Client, merchant: SimulatedEpayV2Merchant) -> None:
    data = _create(client, method="scan")

    assert data["pay_type"] == "qrcode"
    assert data["pay_info"].endswith(f"/cashier/{data['trade_no']}/")


@pytest.mark.parametrize(("params", "message"), [
    (lambda: {**_signed(), "money": "100.00"}, "签名校验失败"),
    (lambda: _signed(private_key=STRANGER_KEYS.private_key), "签名校验失败"),
    (lambda: {key: value for key, value in _signed().items() if key != "sign"}, "签名校验失败"),
    (lambda: {**_signed(), "sign_type": "MD5"}, "签名校验失败"),
    (lambda: _signed(pid="9999"), "商户不存在"),
    (lambda: _signed(timestamp=str(int(time.time()) - 301)), "时间戳"),
    (lambda: _signed(timestamp=""), "时间戳"),
    (lambda: _signed(method="wap"), "不支持的接口类型"),
    (lambda: _signed(type="paypal"), "不支持的支付方式"),
    (lambda: _signed(money="1.234"), "金额格式错误"),
    (lambda: _signed(money="0"), "金额超出范围"),
    (lambda: _signed(out_trade_no="T 1"), "商户订单号只能包含"),
    (lambda: _signed(notify_url="javascript:alert(1)"), "notify_url"),
    (lambda: _signed(name="卡" * 50), "127 字节"),
    (lambda: _signed(clientip=""), "缺少参数 clientip"),
], ids=["tampered", "wrong-key", "unsigned", "md5-sign-type", "unknown-pid", "stale-timestamp", "no-timestamp",
        "bad-method", "bad-type", "three-decimals", "zero", "bad-out-trade-no", "bad-notify-url", "long-name",
        "no-clientip"])
def test_create_refuses_bad_requests_unsigned(client: Client, merchant: SimulatedEpayV2Merchant,
                                              params: Any, message: str) -> None:
    data = _call(client, "create", params())

    assert data["code"] == -1
    assert message in data["msg"]
    assert "sign" not in data
    assert SimulatedEpayV2Trade.objects.count() == 0


def test_api_takes_only_post(client: Client, merchant: SimulatedEpayV2Merchant) -> None:
    assert client.get(API + "create", _signed()).status_code == 405


def test_same_order_again_reuses_the_trade_and_another_amount_is_refused(
        client: Client, merchant: SimulatedEpayV2Merchant) -> None:
    first = _create(client)
    again = _create(client)
    other = _create(client, money="20.00")

    assert first["trade_no"] == again["trade_no"]
    assert other == {"code": -1, "msg": "商户订单号已存在且金额不同"}
    assert list(SimulatedEpayV2Trade.objects.values_list("money", flat=True)) == [Decimal("10.00")]


# --- cashier and notify ---------------------------------------------------------------------------------------

def test_confirm_marks_paid_notifies_signed_get_and_returns(
        client: Client, merchant: SimulatedEpayV2Merchant, replies: list[httpx.Request],
        django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    trade_no = _create(client, money="1", param="p1")["trade_no"]

    with django_capture_on_commit_callbacks(execute=True):
        response = _pay(client, trade_no)

    trade = SimulatedEpayV2Trade.objects.get()
    assert trade.status == SimulatedEpayV2TradeStatus.PAID
    assert len(replies) == 1
    assert replies[0].method == "GET"
    assert str(replies[0].url).startswith(NOTIFY_URL + "?")
    notify = dict(replies[0].url.params)
    assert set(notify) == {"pid", "trade_no", "out_trade_no", "api_trade_no", "type", "trade_status", "addtime",
                           "endtime", "name", "money", "param", "buyer", "timestamp", "sign", "sign_type"}
    assert (notify["pid"], notify["trade_no"], notify["out_trade_no"], notify["money"], notify["param"]) == (
        PID, trade_no, "T1", "1", "p1")
    assert (notify["trade_status"], notify["sign_type"], notify["buyer"]) == ("TRADE_SUCCESS", "RSA", "")
    assert abs(int(notify["timestamp"]) - time.time()) < 60
    assert is_signature_valid(notify, merchant.platform_public_key)
    assert not is_signature_valid(notify, MERCHANT_KEYS.public_key)
    assert (trade.notify_attempts, trade.last_notify_response) == (1, "HTTP 200: success")
    assert trade.notified_at is not None
    assert response.status_code == 302
    assert response["Location"].startswith(RETURN_URL + "?")
    returned = query_params(response["Location"])
    assert is_signature_valid(returned, merchant.platform_public_key)
    assert returned["out_trade_no"] == "T1"


def test_paying_twice_notifies_once(client: Client, merchant: SimulatedEpayV2Merchant, replies: list[httpx.Request],
                                    django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    trade_no = _create(client)["trade_no"]

    with django_capture_on_commit_callbacks(execute=True):
        _pay(client, trade_no)
        second = client.post(f"/sim/epay-v2/cashier/{trade_no}/pay/")

    assert second.status_code == 302
    assert len(replies) == 1


def test_notify_retries_until_the_reply_is_exactly_success(
        client: Client, merchant: SimulatedEpayV2Merchant, monkeypatch: pytest.MonkeyPatch,
        django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    transport, seen = recording_transport(["fail", "success\n", "Success", "success"])
    monkeypatch.setattr(simulator_services, "notify_transport", transport)
    trade_no = _create(client)["trade_no"]

    with django_capture_on_commit_callbacks(execute=True):
        _pay(client, trade_no)

    trade = SimulatedEpayV2Trade.objects.get()
    assert len(seen) == 4
    assert (trade.notify_attempts, trade.last_notify_response) == (4, "HTTP 200: success")
    assert trade.notified_at is not None
    assert all(is_signature_valid(dict(request.url.params), merchant.platform_public_key) for request in seen)


def test_notify_gives_up_after_the_maximum_attempts(
        client: Client, merchant: SimulatedEpayV2Merchant, monkeypatch: pytest.MonkeyPatch,
        django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    monkeypatch.setattr(simulator_services, "notify_transport", failing_transport())
    trade_no = _create(client)["trade_no"]

    with django_capture_on_commit_callbacks(execute=True):
        response = _pay(client, trade_no)

    trade = SimulatedEpayV2Trade.objects.get()
    assert response.status_code == 302
    assert trade.notify_attempts == NOTIFY_MAX_ATTEMPTS == 8
    assert trade.notified_at is None
    assert trade.last_notify_response == "ConnectError: connection refused"


def test_cancel_leaves_the_trade_unpaid_and_unknown_trades_are_not_found(
        client: Client, merchant: SimulatedEpayV2Merchant) -> None:
    trade_no = _create(client)["trade_no"]

    response = client.get(f"/sim/epay-v2/cashier/{trade_no}/cancel/")

    assert response.status_code == 200
    assert "已取消支付" in response.content.decode()
    assert f'href="{RETURN_URL}?out_trade_no=T1"' in response.content.decode()
    assert SimulatedEpayV2Trade.objects.get().status == SimulatedEpayV2TradeStatus.PENDING
    assert client.get("/sim/epay-v2/cashier/404/").status_code == 404
    assert client.post("/sim/epay-v2/cashier/404/pay/").status_code == 404


# --- query, refund, refundquery -------------------------------------------------------------------------------

def test_query_answers_signed_status(client: Client, merchant: SimulatedEpayV2Merchant, replies: list[httpx.Request],
                                     django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    trade_no = _create(client)["trade_no"]

    before = _call(client, "query", _request(out_trade_no="T1"))
    with django_capture_on_commit_callbacks(execute=True):
        _pay(client, trade_no)
    after = _call(client, "query", _request(trade_no=trade_no))
    unknown = _call(client, "query", _request(out_trade_no="NOPE"))
    forged = _call(client, "query", {**_request(out_trade_no="T1"), "out_trade_no": "T2"})

    assert (before["code"], before["status"], before["money"]) == (0, "0", "10.00")
    assert (after["code"], after["status"], after["trade_no"], after["out_trade_no"]) == (0, "1", trade_no, "T1")
    assert _is_platform_signed(before, merchant)
    assert _is_platform_signed(after, merchant)
    assert unknown == {"code": -1, "msg": "订单不存在"}
    assert forged == {"code": -1, "msg": "签名校验失败"}


def test_refund_is_idempotent_by_out_refund_no_and_never_exceeds_paid(
        client: Client, merchant: SimulatedEpayV2Merchant, replies: list[httpx.Request],
        django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    trade_no = _create(client)["trade_no"]
    unpaid = _call(client, "refund", _request(trade_no=trade_no, out_refund_no="R0", money="1.00"))
    with django_capture_on_commit_callbacks(execute=True):
        _pay(client, trade_no)

    first = _call(client, "refund", _request(trade_no=trade_no, out_refund_no="R1", money="6.00"))
    again = _call(client, "refund", _request(trade_no=trade_no, out_refund_no="R1", money="6.00"))
    changed = _call(client, "refund", _request(trade_no=trade_no, out_refund_no="R1", money="5.00"))
    too_much = _call(client, "refund", _request(out_trade_no="T1", out_refund_no="R2", money="4.01"))
    rest = _call(client, "refund", _request(out_trade_no="T1", out_refund_no="R3", money="4.00"))
    looked_up = _call(client, "refundquery", _request(out_refund_no="R1"))

    assert unpaid == {"code": -1, "msg": "交易未支付，不能退款"}
    assert first["code"] == 0
    assert _is_platform_signed(first, merchant)
    assert (first["out_refund_no"], first["trade_no"], first["money"]) == ("R1", trade_no, "6.00")
    assert again["refund_no"] == first["refund_no"]
    assert changed == {"code": -1, "msg": "商户退款单号已存在且内容不同"}
    assert too_much == {"code": -1, "msg": "退款金额超出可退金额 ¥4.00"}
    assert rest["code"] == 0
    assert (looked_up["refund_no"], looked_up["money"], looked_up["out_trade_no"]) == (first["refund_no"], "6.00", "T1")
    assert _is_platform_signed(looked_up, merchant)
    trade = SimulatedEpayV2Trade.objects.get()
    assert trade.refunded_money == Decimal("10.00")
    assert trade.refunds.count() == 2


def test_admin_lists_merchants_trades_and_refunds_without_the_platform_private_key(
        admin_client: Client, merchant: SimulatedEpayV2Merchant) -> None:
    _create(admin_client)

    pages = {name: admin_client.get(f"/admin/sim_epay_v2/{name}/") for name in (
        "simulatedepayv2merchant", "simulatedepayv2trade", "simulatedepayv2refund")}
    detail = admin_client.get(f"/admin/sim_epay_v2/simulatedepayv2merchant/{merchant.pk}/change/")

    assert {name: page.status_code for name, page in pages.items()} == dict.fromkeys(pages, 200)
    assert detail.status_code == 200
    assert merchant.platform_public_key[:40] in detail.content.decode()
    assert merchant.platform_signing_key[:40] not in detail.content.decode()
