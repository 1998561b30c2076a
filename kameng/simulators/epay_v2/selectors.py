"""Reads of the simulated 易支付 V2 gateway: finding trades and refunds of a merchant."""

from __future__ import annotations

from kameng.core.errors import ApplicationError
from kameng.simulators.epay_v2.models import SimulatedEpayV2Merchant, SimulatedEpayV2Refund, SimulatedEpayV2Trade


class EpayV2SimulatorError(ApplicationError):
    """A request the gateway refuses: bad signature, unknown merchant, malformed field, conflicting order."""


def simulated_epay_v2_trade_of_merchant(*, merchant: SimulatedEpayV2Merchant, out_trade_no: str = "",
                                        trade_no: str = "") -> SimulatedEpayV2Trade:
    """A trade by the gateway's number or the merchant's (`trade_no` wins when both are given)."""
    trades = SimulatedEpayV2Trade.objects.filter(merchant=merchant).select_related("merchant")
    trade = None
    if trade_no:
        trade = trades.filter(trade_no=trade_no).first()
    elif out_trade_no:
        trade = trades.filter(out_trade_no=out_trade_no).first()
    if trade is None:
        raise EpayV2SimulatorError("订单不存在", code="unknown_trade")
    return trade


def simulated_epay_v2_refund_of_merchant(*, merchant: SimulatedEpayV2Merchant, out_refund_no: str = "",
                                         refund_no: str = "") -> SimulatedEpayV2Refund:
    refunds = SimulatedEpayV2Refund.objects.filter(merchant=merchant).select_related("trade")
    refund = None
    if refund_no:
        refund = refunds.filter(refund_no=refund_no).first()
    elif out_refund_no:
        refund = refunds.filter(out_refund_no=out_refund_no).first()
    if refund is None:
        raise EpayV2SimulatorError("退款记录不存在", code="unknown_refund")
    return refund


def simulated_epay_v2_trade_by_number(*, trade_no: str) -> SimulatedEpayV2Trade | None:
    return SimulatedEpayV2Trade.objects.select_related("merchant").filter(trade_no=trade_no).first()
