"""The Fulu connector: signature, envelope, each method, every answer → outcome, callbacks, logs; and a round trip
with the supplier simulator in-process."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from kameng.simulators.supplier.core import Merchant, SupplierSimulator
from kameng.suppliers.connectors.base import CallbackRejectedError, Outcome, TopupKind, TopupRequest
from kameng.suppliers.connectors.fulu import GATEWAY_URL, FuluConnector, sign_object
from kameng.suppliers.connectors.registry import connector_for
from kameng.suppliers.models import ConnectorKind
from tests.factories import SupplierFactory

SECRET = "0a091b3aa4324435aab703142518a8f7"
CONFIG = {"gateway_url": "https://fulu.test/api/getway", "app_key": "key-1", "app_secret": SECRET}
PHONE = "13812345678"

Handler = Callable[[httpx.Request], httpx.Response]


def _md5_of_sorted(sorted_characters: str, secret: str) -> str:
    return hashlib.md5((sorted_characters + secret).encode("utf-8")).hexdigest()


def _connector(handler: Handler, **config: Any) -> FuluConnector:
    return FuluConnector({**CONFIG, **config}, client=httpx.Client(transport=httpx.MockTransport(handler)))


def _result_sign(text: str) -> str:
    return _md5_of_sorted("".join(sorted(text)), SECRET)


def _ok(result: Any) -> httpx.Response:
    text = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    return httpx.Response(200, json={"code": 0, "message": "接口调用成功", "result": text, "sign": _result_sign(text)})


def _error(code: int, message: str) -> httpx.Response:
    return httpx.Response(200, json={"code": code, "message": message, "result": "", "sign": ""})


def _answering(response: httpx.Response, seen: list[dict[str, Any]] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(json.loads(request.content))
        return response
    return handler


def _mobile(number: str = "K1") -> TopupRequest:
    return TopupRequest(number, TopupKind.MOBILE, "", 1, charge_account=PHONE, face_value=Decimal("30"),
                        max_price=Decimal("29.90"))


# --- signature and envelope ---------------------------------------------------------------------------------------


def test_signature_sorts_the_characters_of_the_compact_json_and_appends_the_secret() -> None:
    # {"a":"b/c","n":"中"}: unicode and the slash unescaped, no spaces; its 19 characters sorted by code point.
    expected = _md5_of_sorted('""""""""' + ",/::abcn{}中", "s3cret")

    assert sign_object({"a": "b/c", "n": "中"}, "s3cret") == expected
    assert sign_object({"n": "中", "a": "b/c", "sign": "ignored"}, "s3cret") == expected


def test_envelope_has_the_common_fields_shanghai_time_and_a_verifiable_signature() -> None:
    connector = FuluConnector({**CONFIG, "app_auth_token": "tok"})

    envelope = connector.envelope("fulu.order.info.get", {"customer_order_no": "K1"},
                                  now=datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC))

    assert {key: value for key, value in envelope.items() if key != "sign"} == {
        "app_key": "key-1", "method": "fulu.order.info.get", "timestamp": "2026-01-01 08:00:05",
        "version": "2.0", "format": "json", "charset": "utf-8", "sign_type": "md5", "app_auth_token": "tok",
        "biz_content": '{"customer_order_no":"K1"}',
    }
    unsigned = json.dumps({key: value for key, value in envelope.items() if key != "sign"},
                          ensure_ascii=False, separators=(",", ":"))
    assert envelope["sign"] == _md5_of_sorted("".join(sorted(unsigned)), SECRET)


def test_the_real_gateway_is_the_default() -> None:
    assert FuluConnector({"app_key": "k", "app_secret": "s"}).gateway_url == GATEWAY_URL == \
        "https://openapi.fulu.com/api/getway"


# --- each method --------------------------------------------------------------------------------------------------


def test_mobile_submit_sends_phone_face_value_number_and_price_ceiling() -> None:
    seen: list[dict[str, Any]] = []
    connector = _connector(_answering(_ok({"order_id": "F1", "order_state": "processing"}), seen))

    answer = connector.topup_submit(_mobile())

    assert answer.outcome == Outcome.PROCESSING
    assert answer.supplier_order_id == "F1"
    assert seen[0]["method"] == "fulu.order.mobile.add"
    assert json.loads(seen[0]["biz_content"]) == {"customer_order_no": "K1", "charge_phone": PHONE,
                                                  "charge_value": 30, "customer_price": 29.9}


def test_direct_submit_maps_the_game_fields() -> None:
    seen: list[dict[str, Any]] = []
    connector = _connector(_answering(_ok({"order_id": "F2", "order_state": "untreated"}), seen))

    answer = connector.topup_submit(TopupRequest(
        "K2", TopupKind.DIRECT, "20300", 2, charge_account="player-1",
        extra={"game_name": "星海传说", "region": "华东一区", "server": "S3", "role": "阿青", "note": ""}))

    assert answer.outcome == Outcome.PROCESSING  # accepted, not yet looked at
    assert seen[0]["method"] == "fulu.order.direct.add"
    assert json.loads(seen[0]["biz_content"]) == {
        "customer_order_no": "K2", "product_id": "20300", "charge_account": "player-1", "buy_num": 2,
        "charge_game_name": "星海传说", "charge_game_region": "华东一区", "charge_game_srv": "S3",
        "charge_game_role": "阿青"}


def test_card_submit_then_query_returns_the_cards() -> None:
    seen: list[dict[str, Any]] = []
    submit = _connector(_answering(_ok({"order_id": "F3", "order_state": "processing"}), seen))
    assert submit.topup_submit(TopupRequest("K3", TopupKind.CARD, "30001", 2)).outcome == Outcome.PROCESSING
    assert seen[0]["method"] == "fulu.order.card.add"
    assert json.loads(seen[0]["biz_content"]) == {"customer_order_no": "K3", "product_id": "30001", "buy_num": 2}

    query = _connector(_answering(_ok({
        "order_id": "F3", "order_state": "success", "operator_serial_number": "",
        "cards": [{"card_number": "1001", "card_pwd": "PWD-A", "card_deadline": "2099-12-31"},
                  {"card_number": "", "card_pwd": "PWD-B"}]})))
    answer = query.topup_query("K3")

    assert answer.outcome == Outcome.SUCCEEDED
    assert answer.cards == ("1001 PWD-A", "PWD-B")


@pytest.mark.parametrize(("state", "outcome"), [
    ("success", Outcome.SUCCEEDED), ("processing", Outcome.PROCESSING), ("failed", Outcome.FAILED),
    ("untreated", Outcome.PROCESSING), ("weird", Outcome.UNKNOWN),
])
def test_query_maps_the_order_state(state: str, outcome: Outcome) -> None:
    seen: list[dict[str, Any]] = []
    connector = _connector(_answering(_ok({"order_id": "F4", "order_state": state,
                                           "operator_serial_number": "OP-9"}), seen))

    answer = connector.topup_query("K4")

    assert answer.outcome == outcome
    assert seen[0]["method"] == "fulu.order.info.get"
    assert json.loads(seen[0]["biz_content"]) == {"customer_order_no": "K4"}
    assert answer.operator_serial == ("OP-9" if outcome == Outcome.SUCCEEDED else "")


def test_goods_list_reads_price_stock_and_availability() -> None:
    connector = _connector(_answering(_ok([
        {"product_id": "10030", "product_name": "话费 30", "face_value": 30.0, "purchase_price": 29.4,
         "sales_status": "上架", "stock_status": "充足", "stock_num": 12},
        {"product_id": "10050", "product_name": "话费 50", "face_value": 50, "purchase_price": "49.00",
         "sales_status": "下架", "stock_status": "充足"},
        {"product_id": "", "purchase_price": 1},
    ])))

    goods = connector.goods_list()

    assert [(item.product_id, item.price, item.stock, item.face_value, item.is_available) for item in goods] == [
        ("10030", Decimal("29.4"), 12, Decimal("30.0"), True), ("10050", Decimal("49.00"), None, Decimal("50"), False)]


# --- outcomes -----------------------------------------------------------------------------------------------------


def _raising(error: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error
    return handler


@pytest.mark.parametrize("handler", [
    _raising(httpx.ReadTimeout("timed out")), _raising(httpx.ConnectError("refused")),
    _raising(httpx.RemoteProtocolError("dropped")), _answering(httpx.Response(504, text="Gateway Time-out")),
    _answering(httpx.Response(200, text="<html>502</html>")),
    _answering(httpx.Response(200, json={"code": 0, "message": "", "result": '{"order_state":"failed"}',
                                         "sign": "forged"})),
    _answering(_error(5000, "系统繁忙")), _answering(_error(3007, "外部订单号已存在")),
    _answering(_error(3999, "客户订单号重复")),
], ids=["timeout", "connect", "dropped", "504", "garbled", "bad-answer-sign", "server-error", "exists-code",
        "exists-words"])
def test_submit_answers_unknown_whenever_the_order_may_exist(handler: Handler) -> None:
    answer = _connector(handler).topup_submit(_mobile())

    assert answer.outcome == Outcome.UNKNOWN
    assert answer.may_try_next is False


@pytest.mark.parametrize("code", [3001, 3002, 3003, 3004, 3005, 3008])
def test_product_refusals_fail_and_allow_the_next_supplier(code: int) -> None:
    answer = _connector(_answering(_error(code, "库存不足"))).topup_submit(_mobile())

    assert (answer.outcome, answer.code, answer.may_try_next) == (Outcome.FAILED, str(code), True)


def test_an_error_code_staff_listed_as_a_refusal_fails_with_its_code() -> None:
    answer = _connector(_answering(_error(1002, "签名验证失败")), refused_codes=["1002"]).topup_submit(_mobile())

    assert (answer.outcome, answer.code, answer.may_try_next) == (Outcome.FAILED, "1002", True)
    assert "签名验证失败" in answer.message


@pytest.mark.parametrize(("code", "message"), [(1002, "签名验证失败"), (1000, "系统繁忙，请稍后再试")])
def test_an_error_code_not_known_as_a_refusal_is_unknown_never_a_failure(code: int, message: str) -> None:
    # The upstream may have taken the order: the caller queries, it never fails over on a code it cannot read.
    answer = _connector(_answering(_error(code, message))).topup_submit(_mobile())

    assert (answer.outcome, answer.code, answer.may_try_next) == (Outcome.UNKNOWN, str(code), False)


def test_a_query_error_about_the_app_key_is_not_a_missing_order() -> None:
    answer = _connector(_answering(_error(1002, "app_key不存在"))).topup_query("K1")

    assert answer.outcome == Outcome.UNKNOWN


def test_a_query_error_saying_the_order_is_missing_is_not_found() -> None:
    assert _connector(_answering(_error(3009, "订单不存在"))).topup_query("K1").outcome == Outcome.NOT_FOUND
    assert _connector(_answering(_error(4004, "no")), order_missing_codes=["4004"]).topup_query(
        "K1").outcome == Outcome.NOT_FOUND


def test_an_unsigned_success_answer_is_unknown() -> None:
    unsigned = httpx.Response(200, json={"code": 0, "message": "", "result": json.dumps(
        {"order_id": "F1", "order_state": "success"}), "sign": ""})

    assert _connector(_answering(unsigned)).topup_query("K1").outcome == Outcome.UNKNOWN


def test_a_callback_with_a_non_ascii_signature_is_rejected_not_an_error() -> None:
    body = json.dumps({"customer_order_no": "K1", "order_status": "success", "sign": "é"}).encode()

    with pytest.raises(CallbackRejectedError):
        _connector(_answering(_error(0, ""))).callback_verify(body=body, headers={})


def test_missing_secret_fails_the_submit_and_leaves_a_query_unknown() -> None:
    calls: list[dict[str, Any]] = []
    connector = _connector(_answering(_ok({}), calls), app_secret="")

    submit, query = connector.topup_submit(_mobile()), connector.topup_query("K1")

    assert (submit.outcome, submit.code, submit.may_try_next) == (Outcome.FAILED, "connector_config_invalid", True)
    assert (query.outcome, query.code) == (Outcome.UNKNOWN, "connector_config_invalid")
    assert calls == []


def test_bad_requests_and_configs_are_refused_before_any_call() -> None:
    calls: list[dict[str, Any]] = []
    connector = _connector(_answering(_ok({}), calls))
    no_face_value = TopupRequest("K1", TopupKind.MOBILE, "", 1, charge_account=PHONE)

    answer = connector.topup_submit(no_face_value)
    bad_url = _connector(_answering(_ok({}), calls), gateway_url="openapi.fulu.com").topup_submit(_mobile())

    assert (answer.outcome, answer.code, answer.may_try_next) == (Outcome.FAILED, "request_invalid", True)
    assert (bad_url.outcome, bad_url.code) == (Outcome.FAILED, "connector_config_invalid")
    assert calls == []


@pytest.mark.parametrize(("response", "outcome"), [
    (_error(3010, "订单不存在"), Outcome.NOT_FOUND), (_error(1002, "签名验证失败"), Outcome.UNKNOWN),
    (httpx.Response(504), Outcome.UNKNOWN), (_ok({}), Outcome.NOT_FOUND),
])
def test_query_errors(response: httpx.Response, outcome: Outcome) -> None:
    assert _connector(_answering(response)).topup_query("K9").outcome == outcome


def test_query_timeout_is_unknown() -> None:
    assert _connector(_raising(httpx.ReadTimeout("slow"))).topup_query("K9").outcome == Outcome.UNKNOWN


def test_logs_mask_the_phone_number(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kameng.suppliers.fulu"):
        _connector(_answering(_ok({"order_id": "F1", "order_state": "processing"}))).topup_submit(_mobile())

    assert "138****5678" in caplog.text
    assert PHONE not in caplog.text


# --- callbacks ----------------------------------------------------------------------------------------------------


def _callback(**changes: str) -> dict[str, str]:
    body = {"order_id": "F1", "charge_finish_time": "2026-12-03 21:00:00", "customer_order_no": "K1",
            "order_status": "success", "recharge_description": "充值成功", "product_id": "10030",
            "price": "29.4000", "buy_num": "1", "operator_serial_number": "OP-1"}
    body["sign"] = sign_object(body, SECRET)
    body.update(changes)
    return body


def test_callback_success_verifies_and_asks_for_the_success_reply() -> None:
    result = FuluConnector(CONFIG).callback_verify(body=json.dumps(_callback()).encode(), headers={})

    assert (result.customer_order_no, result.reply) == ("K1", "success")
    assert (result.answer.outcome, result.answer.operator_serial, result.answer.supplier_order_id) == (
        Outcome.SUCCEEDED, "OP-1", "F1")


def test_callback_failure_is_a_failed_answer() -> None:
    body = {key: value for key, value in _callback().items() if key != "sign"}
    body.update(order_status="failed", recharge_description="充值失败", operator_serial_number="")
    body["sign"] = sign_object(body, SECRET)

    result = FuluConnector(CONFIG).callback_verify(body=json.dumps(body, ensure_ascii=False).encode(), headers={})

    assert result.answer.outcome == Outcome.FAILED


def test_callback_signed_over_escaped_unicode_verifies_too() -> None:
    body = {key: value for key, value in _callback().items() if key != "sign"}
    body["sign"] = hashlib.md5(("".join(sorted(json.dumps(body, separators=(",", ":")))) + SECRET).encode()).hexdigest()

    result = FuluConnector(CONFIG).callback_verify(body=json.dumps(body).encode(), headers={})

    assert result.answer.outcome == Outcome.SUCCEEDED


@pytest.mark.parametrize("body", [
    json.dumps(_callback(sign="0" * 32)).encode(),  # forged
    json.dumps(_callback(order_status="failed")).encode(),  # tampered after signing
    json.dumps({key: value for key, value in _callback().items() if key != "sign"}).encode(),  # unsigned
    b"order_status=success", b"[]",
], ids=["forged", "tampered", "unsigned", "not-json", "not-object"])
def test_bad_callbacks_are_rejected(body: bytes) -> None:
    with pytest.raises(CallbackRejectedError):
        FuluConnector(CONFIG).callback_verify(body=body, headers={})


# --- registry and the simulator -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_fulu_supplier_gets_the_fulu_connector_from_its_encrypted_config() -> None:
    supplier = SupplierFactory.create(connector_kind=ConnectorKind.FULU, connector_config=json.dumps(CONFIG))

    connector = connector_for(supplier)

    assert isinstance(connector, FuluConnector)
    assert (connector.gateway_url, connector.app_key, connector.app_secret) == (
        CONFIG["gateway_url"], "key-1", SECRET)


def _simulated(simulator: SupplierSimulator, app_key: str, secret: str) -> FuluConnector:
    def handler(request: httpx.Request) -> httpx.Response:
        answer = simulator.gateway(request.content)
        return httpx.Response(answer.status, json=answer.body)
    return FuluConnector({"gateway_url": "http://sim/api/getway", "app_key": app_key, "app_secret": secret},
                         client=httpx.Client(transport=httpx.MockTransport(handler)))


def test_round_trip_with_the_simulator() -> None:
    simulator = SupplierSimulator(merchants=[Merchant("m1", "secret-1", notify_url="http://shop/cb/1/")])
    connector = _simulated(simulator, "m1", "secret-1")

    first = connector.topup_submit(_mobile("R1"))
    again = connector.topup_submit(_mobile("R1"))
    before = connector.topup_query("R1")
    order = simulator.orders[("m1", "R1")]
    callback = simulator.order_finish(order)
    after = connector.topup_query("R1")
    assert callback is not None
    verified = connector.callback_verify(body=json.dumps(callback, ensure_ascii=False).encode(), headers={})

    assert (first.outcome, again.outcome, before.outcome, after.outcome) == (
        Outcome.PROCESSING, Outcome.UNKNOWN, Outcome.PROCESSING, Outcome.SUCCEEDED)
    assert verified.answer.outcome == Outcome.SUCCEEDED
    assert verified.answer.operator_serial == after.operator_serial == order.operator_serial_number
    assert simulator.submissions["R1"] == 2
    assert connector.topup_query("R-missing").outcome == Outcome.NOT_FOUND
    assert [goods.price for goods in connector.goods_list()][:3] == [Decimal("29.4"), Decimal("49"), Decimal("98")]


def test_wrong_secret_is_refused_by_the_simulator() -> None:
    simulator = SupplierSimulator(merchants=[Merchant("m1", "secret-1")])

    answer = _simulated(simulator, "m1", "not-the-secret").topup_submit(_mobile("R2"))

    assert (answer.outcome, answer.code) == (Outcome.UNKNOWN, "1002")  # not a listed refusal: queried, not failed
    assert simulator.orders == {}


def test_one_connector_shared_by_many_threads_submits_each_number_once() -> None:
    simulator = SupplierSimulator(merchants=[Merchant("m1", "secret-1")])
    connector = _simulated(simulator, "m1", "secret-1")
    numbers = [f"T{n}" for n in range(200)]

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = list(pool.map(lambda number: connector.topup_submit(_mobile(number)).outcome, numbers))

    assert outcomes == [Outcome.PROCESSING] * 200
    assert simulator.submissions == dict.fromkeys(numbers, 1)
    assert len(simulator.orders) == 200
