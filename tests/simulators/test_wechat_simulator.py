"""The simulated WeChat Pay, checked with wechatpayv3 as the merchant: its requests must pass the simulator's
signature check, the simulator's replies must pass its verification, and its `callback()` must accept (verify
and decrypt) the notification the simulator sends after a scan is confirmed."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import Client
from pytest_django import DjangoCaptureOnCommitCallbacks as CaptureOnCommit
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.utils import build_authorization, load_private_key, rsa_sign

from kameng.simulators.wechat import services as simulator_services
from kameng.simulators.wechat.models import SimulatedWechatMerchant, SimulatedWechatTrade, TradeState
from kameng.simulators.wechat.services import (
    MerchantKeyPair,
    SimulatedWechatCredentials,
    simulated_wechat_merchant_create,
    wechat_merchant_key_pair_generate,
)
from tests.payments.test_wechat import API_ROOT, APPID, MCHID, route_wechatpayv3

pytestmark = pytest.mark.django_db

NOTIFY_URL = "https://merchant.example/pay/notify/wechat/"
NATIVE_PATH = "/v3/pay/transactions/native"


@pytest.fixture
def merchant_keys() -> MerchantKeyPair:
    return wechat_merchant_key_pair_generate()


@pytest.fixture
def credentials(merchant_keys: MerchantKeyPair) -> SimulatedWechatCredentials:
    return simulated_wechat_merchant_create(mchid=MCHID, appid=APPID,
                                            merchant_public_key_pem=merchant_keys.public_key_pem,
                                            merchant_serial_no=merchant_keys.serial_no, name="演示卡盟")


def library_client(keys: MerchantKeyPair, credentials: SimulatedWechatCredentials) -> WeChatPay:
    client = WeChatPay(wechatpay_type=WeChatPayType.NATIVE, mchid=MCHID, private_key=keys.private_key_pem,
                       cert_serial_no=keys.serial_no, appid=APPID, apiv3_key=credentials.api_v3_key,
                       notify_url=NOTIFY_URL, public_key=credentials.platform_public_key_pem,
                       public_key_id=credentials.platform_public_key_id)
    client._core._gate_way = API_ROOT
    return client


def recording_transport(statuses: list[int]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """Answers each notification with the next status (the last repeats) and keeps what was sent."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(statuses[min(len(seen), len(statuses)) - 1])

    return httpx.MockTransport(handler), seen


def test_merchant_registration_answers_what_the_channel_needs_and_keeps_secrets_encrypted(
        merchant_keys: MerchantKeyPair, credentials: SimulatedWechatCredentials) -> None:
    assert credentials.platform_public_key_id.startswith("PUB_KEY_ID_")
    assert "BEGIN PUBLIC KEY" in credentials.platform_public_key_pem
    assert len(credentials.api_v3_key.encode()) == 32
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_v3_key, platform_private_key FROM sim_wechat_simulatedwechatmerchant")
        api_v3_key, private_key = cursor.fetchone()
    assert credentials.api_v3_key.encode() not in bytes(api_v3_key)
    assert b"PRIVATE KEY" not in bytes(private_key)

    again = simulated_wechat_merchant_create(mchid=MCHID, appid=APPID,
                                             merchant_public_key_pem=merchant_keys.public_key_pem,
                                             merchant_serial_no=merchant_keys.serial_no)
    assert (again.platform_public_key_id, again.api_v3_key) == (credentials.platform_public_key_id,
                                                                credentials.api_v3_key)
    assert SimulatedWechatMerchant.objects.count() == 1


def test_wechatpayv3_orders_and_queries_with_verified_replies(
        monkeypatch: pytest.MonkeyPatch, merchant_keys: MerchantKeyPair,
        credentials: SimulatedWechatCredentials) -> None:
    route_wechatpayv3(monkeypatch)
    client = library_client(merchant_keys, credentials)
    amount = {"total": 1999, "currency": "CNY"}

    status, text = client.pay(description="钱包充值", out_trade_no="P20261126000001", amount=amount)
    status_again, text_again = client.pay(description="钱包充值", out_trade_no="P20261126000001", amount=amount)
    conflict, conflict_text = client.pay(description="钱包充值", out_trade_no="P20261126000001",
                                         amount={"total": 1, "currency": "CNY"})
    query_status, query_text = client.query(out_trade_no="P20261126000001")
    missing_status, missing_text = client.query(out_trade_no="P20261126000404")

    trade = SimulatedWechatTrade.objects.get()
    assert status == 200
    assert json.loads(text) == {"code_url": f"{API_ROOT}/scan/{trade.transaction_id}/"}
    assert (status_again, text_again) == (200, text)
    assert (conflict, json.loads(conflict_text)["code"]) == (400, "INVALID_REQUEST")
    assert query_status == 200
    queried = json.loads(query_text)
    assert (queried["trade_state"], queried["amount"]["total"], queried["mchid"], queried["appid"]) == (
        "NOTPAY", 1999, MCHID, APPID)
    assert (missing_status, json.loads(missing_text)["code"]) == (404, "ORDER_NOT_EXIST")
    assert (trade.total, trade.notify_url, trade.trade_state) == (1999, NOTIFY_URL, TradeState.NOTPAY)


def _native_body() -> bytes:
    return json.dumps({"appid": APPID, "mchid": MCHID, "description": "钱包充值", "out_trade_no": "P20261126000002",
                       "notify_url": NOTIFY_URL, "amount": {"total": 100, "currency": "CNY"}}).encode()


def _post_native(client: Client, body: bytes, authorization: str) -> Any:
    return client.post(API_ROOT.removeprefix("http://testserver") + NATIVE_PATH, data=body,
                       content_type="application/json", headers={"Authorization": authorization})


@pytest.mark.usefixtures("credentials")
def test_request_not_signed_by_the_merchant_key_is_refused(client: Client, merchant_keys: MerchantKeyPair) -> None:
    body = _native_body()
    other_key = load_private_key(wechat_merchant_key_pair_generate().private_key_pem)
    own_key = load_private_key(merchant_keys.private_key_pem)
    stale = int(time.time()) - 900
    stale_signature = rsa_sign(own_key, f"POST\n{NATIVE_PATH}\n{stale}\nNONCE\n{body.decode()}\n")
    attempts = {
        "missing": "",
        "other key": build_authorization(NATIVE_PATH, "POST", MCHID, merchant_keys.serial_no, other_key,
                                         data=body.decode()),
        "other path": build_authorization("/v3/pay/transactions/jsapi", "POST", MCHID, merchant_keys.serial_no,
                                          own_key, data=body.decode()),
        "other serial": build_authorization(NATIVE_PATH, "POST", MCHID, "0" * 40, own_key, data=body.decode()),
        "stale": (f'WECHATPAY2-SHA256-RSA2048 mchid="{MCHID}",nonce_str="NONCE",signature="{stale_signature}",'
                  f'timestamp="{stale}",serial_no="{merchant_keys.serial_no}"'),
    }

    for name, authorization in attempts.items():
        response = _post_native(client, body, authorization)
        assert (name, response.status_code, response.json()["code"]) == (name, 401, "SIGN_ERROR")
    assert SimulatedWechatTrade.objects.count() == 0

    good = build_authorization(NATIVE_PATH, "POST", MCHID, merchant_keys.serial_no, own_key, data=body.decode())
    assert _post_native(client, body, good).status_code == 200
    assert SimulatedWechatTrade.objects.count() == 1


def _confirm_scan(client: Client, code_url: str, capture: CaptureOnCommit) -> None:
    page = client.get(code_url)
    assert page.status_code == 200
    assert "确认支付" in page.content.decode()
    action = re.search(r'<form method="post" action="([^"]+)"', page.content.decode())
    assert action
    with capture(execute=True):
        assert client.post(action.group(1)).status_code == 200


def test_confirmed_scan_sends_a_notification_wechatpayv3_verifies_and_decrypts(
        client: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: CaptureOnCommit,
        merchant_keys: MerchantKeyPair, credentials: SimulatedWechatCredentials) -> None:
    route_wechatpayv3(monkeypatch)
    transport, seen = recording_transport([204])
    monkeypatch.setattr(simulator_services, "notify_transport", transport)
    merchant = library_client(merchant_keys, credentials)
    _, text = merchant.pay(description="钱包充值", out_trade_no="P20261126000003",
                           amount={"total": 2500, "currency": "CNY"})

    _confirm_scan(client, json.loads(text)["code_url"], django_capture_on_commit_callbacks)
    paid_again = client.post(f"/sim/wechat/scan/{SimulatedWechatTrade.objects.get().transaction_id}/pay/")

    assert paid_again.status_code == 200
    assert len(seen) == 1  # paying twice notifies once
    request = seen[0]
    assert str(request.url) == NOTIFY_URL
    assert request.headers["content-type"] == "application/json"
    event = merchant.callback(dict(request.headers), request.content)
    assert event is not None
    assert (event["event_type"], event["resource_type"]) == ("TRANSACTION.SUCCESS", "encrypt-resource")
    resource = event["resource"]
    trade = SimulatedWechatTrade.objects.get()
    assert (resource["out_trade_no"], resource["transaction_id"], resource["trade_state"]) == (
        "P20261126000003", trade.transaction_id, "SUCCESS")
    assert (resource["amount"]["total"], resource["mchid"], resource["appid"]) == (2500, MCHID, APPID)
    assert (trade.notify_attempts, trade.notified_at is not None) == (1, True)

    _, queried = merchant.query(out_trade_no="P20261126000003")
    assert json.loads(queried)["trade_state"] == "SUCCESS"


def test_notification_is_retried_until_acknowledged_with_2xx(
        client: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: CaptureOnCommit,
        merchant_keys: MerchantKeyPair, credentials: SimulatedWechatCredentials) -> None:
    route_wechatpayv3(monkeypatch)
    transport, seen = recording_transport([500, 400, 200])
    monkeypatch.setattr(simulator_services, "notify_transport", transport)
    _, text = library_client(merchant_keys, credentials).pay(
        description="钱包充值", out_trade_no="P20261126000004", amount={"total": 100, "currency": "CNY"})

    _confirm_scan(client, json.loads(text)["code_url"], django_capture_on_commit_callbacks)  # eager: retries at once

    trade = SimulatedWechatTrade.objects.get()
    assert len(seen) == 3
    assert (trade.notify_attempts, trade.last_notify_response) == (3, "HTTP 200: ")
    assert trade.notified_at is not None


def test_scanning_an_unknown_code_says_so(client: Client) -> None:
    response = client.get("/sim/wechat/scan/4200000000000000000000/")

    assert response.status_code == 404
    assert "二维码无效" in response.content.decode()


def test_the_scan_page_says_it_is_the_wechat_pay_simulator(
        client: Client, monkeypatch: pytest.MonkeyPatch, merchant_keys: MerchantKeyPair,
        credentials: SimulatedWechatCredentials) -> None:
    route_wechatpayv3(monkeypatch)
    _, text = library_client(merchant_keys, credentials).pay(
        description="钱包充值", out_trade_no="P20261126000021", amount={"total": 100, "currency": "CNY"})

    body = client.get(json.loads(text)["code_url"]).content.decode()

    assert "<title>微信支付 - 模拟微信支付</title>" in body
    assert "这是内置的模拟微信支付网关" in body
    assert "易支付" not in body
