"""The simulated 易支付 gateway over HTTP: submit.php, the cashier, the notify it sends, mapi.php and api.php."""

from __future__ import annotations

import re
from decimal import Decimal
from io import StringIO
from urllib.parse import urlencode

import httpx
import pytest
from django.core.management import call_command
from django.test import Client
from pytest_django import DjangoCaptureOnCommitCallbacks as CaptureOnCommit

from kameng.payments.gateways.epay import epay_sign
from kameng.simulators import services as simulator_services
from kameng.simulators.models import SimulatedEpayTrade, SimulatedTradeStatus
from kameng.simulators.services import NOTIFY_MAX_ATTEMPTS, simulated_epay_notify_params
from tests.payments.support import (
    KEY,
    NOTIFY_URL,
    PID,
    RETURN_URL,
    epay_merchant,
    failing_transport,
    query_params,
    recording_transport,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _merchant() -> None:
    epay_merchant()


@pytest.fixture
def replies(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Notifications are answered "success" and recorded instead of going out to the network."""
    transport, seen = recording_transport(["success"])
    monkeypatch.setattr(simulator_services, "notify_transport", transport)
    return seen


def _signed(*, key: str = KEY, **fields: str) -> dict[str, str]:
    params = {"pid": PID, "type": "alipay", "out_trade_no": "T1", "notify_url": NOTIFY_URL,
              "return_url": RETURN_URL, "name": "钱包充值 ¥10.00", "money": "10.00", **fields}
    params = {name: value for name, value in params.items() if value}
    return {**params, "sign": epay_sign(params, key), "sign_type": "MD5"}


def _submit(client: Client, params: dict[str, str]) -> tuple[int, str]:
    response = client.get("/sim/epay/submit.php?" + urlencode(params))
    return response.status_code, response.content.decode()


def _pay_path(html: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_submit_renders_a_self_contained_chinese_cashier(client: Client) -> None:
    status, html = _submit(client, _signed())

    assert status == 200
    trade = SimulatedEpayTrade.objects.get()
    assert (trade.out_trade_no, trade.money, trade.money_raw, trade.status) == (
        "T1", Decimal("10.00"), "10.00", SimulatedTradeStatus.PENDING)
    assert (trade.notify_url, trade.return_url, trade.type) == (NOTIFY_URL, RETURN_URL, "alipay")
    for text in ("演示卡盟", "钱包充值 ¥10.00", "¥10.00", "确认支付", "取消", "支付宝", 'lang="zh-CN"'):
        assert text in html
    assert _pay_path(html) == f"/sim/epay/cashier/{trade.trade_no}/pay/"
    assert "<script" not in html
    assert re.findall(r"<link[^>]*>", html) == ['<link rel="icon" href="data:,">']  # no request for /favicon.ico
    assert "cdn" not in html.lower()


def test_submit_accepts_post_and_keeps_param(client: Client) -> None:
    response = client.post("/sim/epay/submit.php", _signed(param="user=7"))

    assert response.status_code == 200
    assert SimulatedEpayTrade.objects.get().param == "user=7"


@pytest.mark.parametrize(("params", "message"), [
    ({**_signed(), "money": "100.00"}, "签名校验失败"),
    (_signed(key="wrong-key"), "签名校验失败"),
    ({key: value for key, value in _signed().items() if key != "sign"}, "签名校验失败"),
    (_signed(pid="9999"), "商户不存在"),
    (_signed(money="1.234"), "金额格式错误"),
    (_signed(money="-1"), "金额格式错误"),
    (_signed(money="abc"), "金额格式错误"),
    (_signed(money="0"), "金额超出范围"),
    (_signed(out_trade_no="T 1"), "商户订单号只能包含"),
    (_signed(notify_url="javascript:alert(1)"), "notify_url"),
    (_signed(name="卡" * 50), "127 字节"),
], ids=["tampered", "wrong-key", "unsigned", "unknown-pid", "three-decimals", "negative", "text", "zero",
        "bad-out-trade-no", "bad-notify-url", "long-name"])
def test_submit_refuses_bad_requests_with_a_readable_page(client: Client, params: dict[str, str],
                                                          message: str) -> None:
    status, html = _submit(client, params)

    assert status == 400
    assert "支付请求错误" in html
    assert message in html
    assert SimulatedEpayTrade.objects.count() == 0


def test_same_order_submitted_again_reuses_the_trade(client: Client) -> None:
    first_status, first = _submit(client, _signed())
    again_status, again = _submit(client, _signed())

    assert (first_status, again_status) == (200, 200)
    assert SimulatedEpayTrade.objects.count() == 1
    assert _pay_path(first) == _pay_path(again)


def test_same_order_number_with_another_amount_is_refused(client: Client) -> None:
    _submit(client, _signed())

    status, html = _submit(client, _signed(money="20.00"))

    assert status == 400
    assert "商户订单号已存在且金额不同" in html
    assert list(SimulatedEpayTrade.objects.values_list("money", flat=True)) == [Decimal("10.00")]


def test_confirm_marks_paid_notifies_and_returns_with_signed_params(
        client: Client, replies: list[httpx.Request], django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    _, html = _submit(client, _signed(param="p1"))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_pay_path(html))

    trade = SimulatedEpayTrade.objects.get()
    assert trade.status == SimulatedTradeStatus.PAID
    assert trade.paid_at is not None
    expected = {"pid": PID, "trade_no": trade.trade_no, "out_trade_no": "T1", "type": "alipay",
                "name": "钱包充值 ¥10.00", "money": "10.00", "trade_status": "TRADE_SUCCESS", "param": "p1"}
    signed = {**expected, "sign": epay_sign(expected, KEY), "sign_type": "MD5"}
    assert response.status_code == 302
    assert response["Location"].startswith(RETURN_URL + "?")
    assert query_params(response["Location"]) == signed
    assert len(replies) == 1
    assert replies[0].method == "GET"
    assert str(replies[0].url).startswith(NOTIFY_URL + "?")
    assert dict(replies[0].url.params) == signed
    assert (trade.notify_attempts, trade.last_notify_response) == (1, "HTTP 200: success")
    assert trade.notified_at is not None


def test_paying_twice_notifies_once(client: Client, replies: list[httpx.Request],
                                    django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    _, html = _submit(client, _signed())

    with django_capture_on_commit_callbacks(execute=True):
        client.post(_pay_path(html))
        second = client.post(_pay_path(html))

    assert second.status_code == 302
    assert len(replies) == 1
    assert SimulatedEpayTrade.objects.get().notify_attempts == 1


def test_notify_retries_until_the_reply_is_exactly_success(
        client: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    transport, seen = recording_transport(["fail", "<html>error</html>", "Success", "success"])
    monkeypatch.setattr(simulator_services, "notify_transport", transport)
    _, html = _submit(client, _signed())

    with django_capture_on_commit_callbacks(execute=True):
        client.post(_pay_path(html))

    trade = SimulatedEpayTrade.objects.get()
    assert len(seen) == 4
    assert trade.notify_attempts == 4
    assert trade.last_notify_response == "HTTP 200: success"
    assert trade.notified_at is not None


def test_notify_gives_up_after_the_maximum_attempts(
        client: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    monkeypatch.setattr(simulator_services, "notify_transport", failing_transport())
    _, html = _submit(client, _signed())

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_pay_path(html))

    trade = SimulatedEpayTrade.objects.get()
    assert response.status_code == 302
    assert trade.notify_attempts == NOTIFY_MAX_ATTEMPTS == 8
    assert trade.notified_at is None
    assert trade.last_notify_response == "ConnectError: connection refused"


def test_cancel_leaves_the_trade_unpaid(client: Client) -> None:
    _submit(client, _signed())
    trade = SimulatedEpayTrade.objects.get()

    response = client.get(f"/sim/epay/cashier/{trade.trade_no}/cancel/")

    assert response.status_code == 200
    assert "已取消支付" in response.content.decode()
    # Back to the merchant's return URL naming its order, unsigned: the merchant shows the order, nothing is proven.
    assert f'href="{RETURN_URL}?out_trade_no=T1"' in response.content.decode()
    trade.refresh_from_db()
    assert trade.status == SimulatedTradeStatus.PENDING


def test_unknown_trade_at_the_cashier_is_not_found(client: Client) -> None:
    assert client.get("/sim/epay/cashier/404/").status_code == 404
    assert client.post("/sim/epay/cashier/404/pay/").status_code == 404


def test_mapi_creates_a_trade_and_points_to_its_cashier(client: Client) -> None:
    response = client.post("/sim/epay/mapi.php", _signed(clientip="203.0.113.9", device="pc", return_url=""))

    data = response.json()
    trade = SimulatedEpayTrade.objects.get()
    assert data == {"code": 1, "msg": "下单成功", "trade_no": trade.trade_no,
                    "payurl": f"http://testserver/sim/epay/cashier/{trade.trade_no}/"}
    assert trade.client_ip == "203.0.113.9"
    cashier = client.get(data["payurl"])
    assert cashier.status_code == 200
    assert "确认支付" in cashier.content.decode()


@pytest.mark.parametrize(("params", "code"), [
    (_signed(), -4),
    (_signed(clientip="203.0.113.9", key="wrong"), -2),
    (_signed(clientip="203.0.113.9", money="x"), -4),
], ids=["no-clientip", "bad-sign", "bad-money"])
def test_mapi_refuses_bad_requests(client: Client, params: dict[str, str], code: int) -> None:
    data = client.post("/sim/epay/mapi.php", params).json()

    assert data["code"] == code
    assert data["msg"]
    assert SimulatedEpayTrade.objects.count() == 0


def _query(client: Client, **params: str) -> dict[str, object]:
    return client.get("/sim/epay/api.php", {"act": "order", "pid": PID, "key": KEY, **params}).json()


def test_query_reports_unpaid_then_paid(client: Client, replies: list[httpx.Request],
                                        django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    _, html = _submit(client, _signed(money="10"))
    trade = SimulatedEpayTrade.objects.get()
    assert _query(client, out_trade_no="T1")["status"] == 0

    with django_capture_on_commit_callbacks(execute=True):
        client.post(_pay_path(html))

    data = _query(client, out_trade_no="T1")
    assert {key: data[key] for key in ("code", "trade_no", "out_trade_no", "type", "pid", "name", "money",
                                       "status")} == {
        "code": 1, "trade_no": trade.trade_no, "out_trade_no": "T1", "type": "alipay", "pid": PID,
        "name": "钱包充值 ¥10.00", "money": "10.00", "status": 1}
    assert _query(client, trade_no=trade.trade_no)["out_trade_no"] == "T1"


@pytest.mark.parametrize("params", [{"key": "wrong", "out_trade_no": "T1"}, {"pid": "9999", "out_trade_no": "T1"},
                                    {"out_trade_no": "NOPE"}, {}], ids=["wrong-key", "unknown-pid", "unknown-trade",
                                                                        "no-number"])
def test_query_refuses_wrong_key_or_unknown_trade(client: Client, params: dict[str, str]) -> None:
    _submit(client, _signed())

    data = _query(client, **params)

    assert data["code"] == -1
    assert data["msg"]
    assert "trade_no" not in data


def _refund(client: Client, trade: SimulatedEpayTrade, money: str, key: str = KEY) -> dict[str, object]:
    return client.post("/sim/epay/api.php?act=refund",
                       {"pid": PID, "key": key, "trade_no": trade.trade_no, "money": money}).json()


def test_refund_partial_then_full_and_never_more_than_paid(client: Client, replies: list[httpx.Request]) -> None:
    _, html = _submit(client, _signed())
    client.post(_pay_path(html))
    trade = SimulatedEpayTrade.objects.get()

    assert _refund(client, trade, "3.00")["code"] == 1
    assert _refund(client, trade, "7.01") == {"code": 0, "msg": "退款金额超出可退金额 ¥7.00"}
    assert _refund(client, trade, "7.00")["code"] == 1
    assert _refund(client, trade, "0.01")["code"] == 0
    trade.refresh_from_db()
    assert trade.refunded_money == Decimal("10.00")


def test_refund_refuses_unpaid_trades_and_wrong_keys(client: Client) -> None:
    _submit(client, _signed())
    trade = SimulatedEpayTrade.objects.get()

    assert _refund(client, trade, "1.00")["code"] == 0
    trade.status = SimulatedTradeStatus.PAID
    trade.save()
    assert _refund(client, trade, "1.00", key="wrong") == {"code": 0, "msg": "商户号或密钥错误"}
    assert client.get("/sim/epay/api.php", {"act": "refund", "pid": PID, "key": KEY, "trade_no": trade.trade_no,
                                            "money": "1.00"}).json()["code"] == 0
    trade.refresh_from_db()
    assert trade.refunded_money == Decimal("0.00")


def test_unknown_act_is_refused(client: Client) -> None:
    assert client.get("/sim/epay/api.php", {"act": "settle"}).json()["code"] == -1


def test_management_command_resends_the_notify(client: Client, replies: list[httpx.Request],
                                               django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    _, html = _submit(client, _signed())
    with django_capture_on_commit_callbacks(execute=True):
        client.post(_pay_path(html))
    output = StringIO()

    call_command("epay_sim_notify", "T1", stdout=output)

    trade = SimulatedEpayTrade.objects.get()
    assert len(replies) == 2
    assert dict(replies[1].url.params) == simulated_epay_notify_params(trade)
    assert trade.notify_attempts == 2
    assert "第 2 次通知：商户已确认 (success)" in output.getvalue()


def test_management_command_refuses_unknown_or_unpaid_trades(client: Client) -> None:
    from django.core.management.base import CommandError

    _submit(client, _signed())
    with pytest.raises(CommandError, match="没有商户订单号为 NOPE"):
        call_command("epay_sim_notify", "NOPE")
    with pytest.raises(CommandError, match="交易尚未支付"):
        call_command("epay_sim_notify", "T1")
