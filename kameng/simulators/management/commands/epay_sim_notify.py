"""`manage.py epay_sim_notify <out_trade_no>`: (re)send a simulated trade's notification once, by hand."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kameng.core.errors import ApplicationError
from kameng.simulators.selectors import simulated_epay_trade_by_out_trade_no
from kameng.simulators.services import simulated_epay_notify_params, simulated_epay_notify_send


class Command(BaseCommand):
    help = "向商户重新发送模拟易支付交易的异步通知（一次，立即发送）"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out_trade_no", help="商户订单号")
        parser.add_argument("--pid", default="", help="商户号（多个商户有相同订单号时必填）")
        parser.add_argument("--show", action="store_true", help="只打印签名后的通知参数，不发送")

    def handle(self, *args: Any, **options: Any) -> None:
        trades = simulated_epay_trade_by_out_trade_no(out_trade_no=options["out_trade_no"], pid=options["pid"])
        if not trades:
            raise CommandError(f"没有商户订单号为 {options['out_trade_no']} 的模拟交易")
        if len(trades) > 1:
            raise CommandError("多个商户有此订单号，请用 --pid 指定")
        trade = trades[0]
        if options["show"]:
            for key, value in simulated_epay_notify_params(trade).items():
                self.stdout.write(f"{key}={value}")
            return
        try:
            attempt = simulated_epay_notify_send(trade_id=trade.pk, is_forced=True)
        except ApplicationError as error:
            raise CommandError(error.message) from error
        verdict = "商户已确认 (success)" if attempt.is_delivered else "商户未确认"
        self.stdout.write(f"{trade.trade_no} → {trade.notify_url}\n第 {attempt.attempts} 次通知：{verdict}\n"
                          f"{attempt.response}")
