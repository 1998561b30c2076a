"""The epay V1 refund call: which failures leave the refund certainly unsent, and which leave its outcome unknown.

V1 refunds have no refund number and the protocol no refund query (PROTOCOLS.md §1): only a connection that was
never made is safe to retry; anything after the request may have left is an unknown outcome, which the refund
service never resends (tests/payments/test_refund_unknown_outcome.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from kameng.payments.gateways.base import GatewayError, RefundResult, RequestNotSentError
from kameng.payments.gateways.base import RefundStatus as GatewayRefundStatus
from kameng.payments.gateways.epay import EpayV1Gateway


def test_v1_adapter_tells_a_connection_never_made_from_an_unknown_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = EpayV1Gateway(gateway_url="http://gw.invalid/", merchant_id="1001", merchant_key="k" * 32)
    assert gateway.has_refund_query is False

    def refund() -> RefundResult:
        return gateway.refund(out_trade_no="P1", gateway_trade_no="T1", refund_no="R1", amount=Decimal("1.00"),
                              total_amount=Decimal("1.00"), reason="")

    def raising(error: Exception) -> Any:
        def post(*args: Any, **kwargs: Any) -> httpx.Response:
            raise error
        return post

    for never_sent in (httpx.ConnectError("refused"), httpx.ConnectTimeout("no route")):
        monkeypatch.setattr(httpx, "post", raising(never_sent))
        with pytest.raises(RequestNotSentError):
            refund()
    for unknown in (httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped")):
        monkeypatch.setattr(httpx, "post", raising(unknown))
        with pytest.raises(GatewayError) as error:
            refund()
        assert not isinstance(error.value, RequestNotSentError)
    for answer in (httpx.Response(502, json={"code": -1, "msg": "bad gateway"}), httpx.Response(200, text="<html>")):
        monkeypatch.setattr(httpx, "post", lambda *args, answer=answer, **kwargs: answer)
        with pytest.raises(GatewayError, match="结果未知"):
            refund()
    with pytest.raises(GatewayError, match="没有退款查询接口"):
        gateway.refund_query(out_trade_no="P1", gateway_trade_no="T1", refund_no="R1")


def test_v1_adapter_reads_the_gateways_own_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = EpayV1Gateway(gateway_url="http://gw.invalid/", merchant_id="1001", merchant_key="k" * 32)
    answers = iter([httpx.Response(200, json={"code": 1, "msg": "退款成功"}),
                    httpx.Response(200, json={"code": -1, "msg": "退款金额超过可退金额"})])
    monkeypatch.setattr(httpx, "post", lambda *args, **kwargs: next(answers))

    def refund() -> RefundResult:
        return gateway.refund(out_trade_no="P1", gateway_trade_no="T1", refund_no="R1", amount=Decimal("1.00"),
                              total_amount=Decimal("1.00"), reason="")

    assert refund() == RefundResult(status=GatewayRefundStatus.SUCCEEDED, message="退款成功")
    assert refund() == RefundResult(status=GatewayRefundStatus.FAILED, message="退款金额超过可退金额")
