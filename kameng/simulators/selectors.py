"""Reads of the simulated 易支付 gateway: authenticating a merchant by its key, finding trades."""

from __future__ import annotations

import hmac
import secrets

from kameng.core.errors import ApplicationError
from kameng.simulators.models import SimulatedEpayMerchant, SimulatedEpayTrade


class SimulatorRequestError(ApplicationError):
    """A request the gateway refuses: bad signature, unknown merchant, malformed field, conflicting order."""


def simulated_epay_merchant_by_key(*, pid: str, key: str) -> SimulatedEpayMerchant:
    """The active merchant `pid` if `key` is its key (api.php sends the key in clear, server to server)."""
    merchant = SimulatedEpayMerchant.objects.filter(pid=pid, is_active=True).first() if pid else None
    # Compare even for an unknown pid so that both failures cost the same.
    expected = merchant.signing_key if merchant is not None else secrets.token_hex(16)
    if merchant is None or not hmac.compare_digest(key.encode(), expected.encode()):
        raise SimulatorRequestError("商户号或密钥错误", code="bad_key")
    return merchant


def simulated_epay_trade_of_merchant(*, merchant: SimulatedEpayMerchant, out_trade_no: str = "",
                                     trade_no: str = "") -> SimulatedEpayTrade:
    """api.php?act=order looks a trade up by the merchant's order number or by the gateway's."""
    trades = SimulatedEpayTrade.objects.filter(merchant=merchant).select_related("merchant")
    trade = None
    if out_trade_no:
        trade = trades.filter(out_trade_no=out_trade_no).first()
    elif trade_no:
        trade = trades.filter(trade_no=trade_no).first()
    if trade is None:
        raise SimulatorRequestError("订单号不存在", code="unknown_trade")
    return trade


def simulated_epay_trade_by_number(*, trade_no: str) -> SimulatedEpayTrade | None:
    return SimulatedEpayTrade.objects.select_related("merchant").filter(trade_no=trade_no).first()


def simulated_epay_trade_by_out_trade_no(*, out_trade_no: str, pid: str = "") -> list[SimulatedEpayTrade]:
    trades = SimulatedEpayTrade.objects.select_related("merchant").filter(out_trade_no=out_trade_no)
    if pid:
        trades = trades.filter(merchant__pid=pid)
    return list(trades)
