"""The timeline's text: every event kind rendered from its kind + params, in Simplified Chinese and in English."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.utils import translation

from kameng.orders.events import TEMPLATES, GatewayPayment, event_text, fact, note
from kameng.orders.models import OrderEvent, OrderEventKind

K = OrderEventKind

# (kind, params, Chinese, English): written out, not derived from the templates.
RENDERED: list[tuple[str, dict[str, Any], str, str]] = [
    (K.CREATED, {}, "订单已创建，等待支付", "Order created, awaiting payment"),
    (K.WALLET_PAID, {}, "已使用钱包余额支付", "Paid from wallet balance"),
    (K.PAID, {"channel": "支付宝", "amount": "49.50", "payment": "P20261203000001"},
     "已通过支付宝支付 ¥49.50", "Paid ¥49.50 with 支付宝"),
    (K.PAID, {}, "已支付", "Paid"),
    (K.UNDER_REVIEW, {}, "订单审核中", "Order under review"),
    (K.FULFILLING, {}, "正在发货", "Delivering"),
    (K.FULFILLING_MANUALLY, {}, "已支付，等待人工发货", "Paid: waiting for staff to deliver"),
    (K.DELIVERED, {}, "已发货，卡密已到账", "Delivered: your card keys are ready"),
    (K.DELIVERED_MANUALLY, {"note": "账号 a@b.cn 已开通，密码见邮件"},
     "已发货，发货说明：账号 a@b.cn 已开通，密码见邮件", "Delivered. Delivery note: 账号 a@b.cn 已开通，密码见邮件"),
    (K.DELIVERED_MANUALLY, {}, "已发货，请查看发货说明", "Delivered: see the delivery note"),
    (K.COMPLETED, {}, "订单已完成", "Order completed"),
    (K.EXPIRED, {}, "超时未支付，订单已关闭，库存已释放", "Not paid in time: order closed, stock released"),
    (K.CANCELLED, {}, "订单已取消，库存已释放", "Order cancelled, stock released"),
    (K.DELIVERY_FAILED, {"reason": "上游无货"}, "发货失败：上游无货", "Delivery failed: 上游无货"),
    (K.DELIVERY_FAILED, {}, "发货失败", "Delivery failed"),
    (K.OUT_OF_STOCK, {}, "库存不足，无法发货", "Not enough stock to deliver"),
    (K.DELIVERY_FAILED_REFUNDED, {"amount": "19.00"}, "发货失败，¥19.00 已退回钱包余额",
     "Delivery failed: ¥19.00 returned to your wallet balance"),
    (K.REFUNDED, {"amount": "50.00", "reason": "卡密无效", "refund": "R1"}, "已退款 ¥50.00 到钱包余额（卡密无效）",
     "Refunded ¥50.00 to your wallet balance (Card key invalid)"),  # a reason the catalogue knows is translated
    (K.REFUNDED, {"amount": "50.00"}, "已退款 ¥50.00 到钱包余额", "Refunded ¥50.00 to your wallet balance"),
    (K.REFUNDED, {}, "已退款到钱包余额", "Refunded to wallet balance"),
    (K.PARTIALLY_REFUNDED, {"amount": "25.00", "reason": "少发一张"}, "已退款 ¥25.00 到钱包余额（少发一张）",
     "Refunded ¥25.00 to your wallet balance (少发一张)"),
    (K.PARTIALLY_REFUNDED, {}, "已部分退款", "Partially refunded"),
    (K.AFTER_SALES, {}, "售后处理中", "After-sales in progress"),
    (K.AFTER_SALES, {"reason": "卡密无效"}, "已申请售后（卡密无效），等待处理",
     "After-sales requested (Card key invalid), waiting for staff"),
    (K.AFTER_SALES_REJECTED, {"reason": "卡密已核实可用"}, "售后申请未通过：卡密已核实可用",
     "After-sales request declined: 卡密已核实可用"),
    (K.AFTER_SALES_REJECTED, {}, "售后申请未通过", "After-sales request declined"),
    (K.AFTER_SALES_WITHDRAWN, {}, "售后申请已撤销", "After-sales request withdrawn"),
    (K.REFUNDED_TO_CHANNEL, {"amount": "30.00", "channel": "测试易支付", "refund": "R2"},
     "¥30.00 已原路退回测试易支付", "¥30.00 refunded to your 测试易支付 account"),
    (K.CHANNEL_REFUND_FAILED, {"amount": "20.00", "reason": "通道拒绝退款", "refund": "R3"},
     "原路退款失败（通道拒绝退款），¥20.00 已留在您的钱包余额",
     "Refund to the original payment method failed (通道拒绝退款): ¥20.00 stays in your wallet balance"),
    (K.PAYMENT_TO_WALLET, {"channel": "微信支付", "amount": "9.50", "payment": "P2",
                           "reason": "订单已超时关闭，请重新下单"},
     "微信支付付款 ¥9.50 已到账，但订单未能完成（订单已超时关闭，请重新下单），款项已存入您的钱包余额",
     "Your 微信支付 payment of ¥9.50 arrived but could not complete the order (This order has expired; please "
     "order again): the money is in your wallet balance"),
    (K.PAYMENT_TO_WALLET, {"channel": "微信支付", "amount": "9.50", "payment": "P3",
                           "reason": "订单当前状态为「%(status)s」，无需支付", "reason_params": {"status": "已取消"}},
     "微信支付付款 ¥9.50 已到账，但订单未能完成（订单当前状态为「已取消」，无需支付），款项已存入您的钱包余额",
     "Your 微信支付 payment of ¥9.50 arrived but could not complete the order (This order is “Cancelled”: "
     "there is nothing to pay): the money is in your wallet balance"),
    (K.REFUNDED_TO_CHANNEL, {}, "已原路退款", "Refunded to the original payment method"),
    (K.CHANNEL_REFUND_FAILED, {}, "原路退款失败，款项已留在您的钱包余额",
     "Refund to the original payment method failed: the money stays in your wallet balance"),
    (K.PAYMENT_TO_WALLET, {}, "付款已到账，但订单未能完成，款项已存入您的钱包余额",
     "Your payment arrived but could not complete the order: the money is in your wallet balance"),
    (K.RESERVATION_RELEASED, {}, "支付时间将到，预留的库存已让给已付款的买家；如仍需购买，付款时将从现有库存重新分配",
     "Your payment time was nearly up, so the stock held for you went to a buyer who had paid; if you still want "
     "it, stock will be allocated again when you pay"),
    (K.POINTS_PAID, {}, "已使用积分兑换", "Paid with points"),
    (K.POINTS_REFUNDED, {"points": "500"}, "已退款，500 积分已退回", "Refunded: 500 points returned"),
    (K.POINTS_REFUNDED, {}, "已退款，积分已退回", "Refunded: points returned"),
    (K.ROUTED, {"supplier": "甲", "price": "9.50", "reason": "最低价"}, "已分配供货商 甲（供货价 ¥9.50，最低价）",
     "Routed to supplier 甲 (cost ¥9.50, lowest price)"),
    (K.ROUTED, {}, "已分配供货商", "Routed to a supplier"),
    (K.TOPUP_SUBMITTING, {}, "正在向运营商发送请求", "Sending the request to the operator"),
    (K.TOPUP_PROCESSING, {}, "充值中", "Top-up in progress"),
    (K.TOPUP_SUCCEEDED, {"operator_serial": "SN123"}, "已到账，运营商流水号 SN123",
     "Credited: operator serial number SN123"),
    (K.TOPUP_SUCCEEDED, {}, "已到账", "Credited"),
    (K.TOPUP_FAILED_OVER, {"reason": "3001"}, "供货商未能完成（3001），已换供货商重试",
     "The supplier could not complete it (3001): retrying with another supplier"),
    (K.TOPUP_FAILED_OVER, {}, "已换供货商重试", "Retrying with another supplier"),
    (K.TOPUP_REVIEWED, {"staff": "admin", "supplier": "甲", "outcome": "已到账", "operator_serial": "SN1",
                        "reason": "电话核实"}, "admin 核查 甲 的直充结果：已到账，运营商流水号 SN1（电话核实）",
     "admin checked the top-up with 甲: Credited, operator serial number SN1 (电话核实)"),
    (K.TOPUP_REVIEWED, {"staff": "admin", "supplier": "甲", "outcome": "充值失败", "reason": "电话核实"},
     "admin 核查 甲 的直充结果：充值失败（电话核实）", "admin checked the top-up with 甲: Top-up failed (电话核实)"),
    (K.TOPUP_REVIEWED, {}, "人工核查直充结果", "Top-up result checked by staff"),
    (K.TOPUP_NO_ROUTE, {"detail": "甲：亏本"}, "没有可用的供货商：甲：亏本",
     "No supplier could take the order: 甲：亏本"),
    (K.TOPUP_NO_ROUTE, {}, "没有可用的供货商", "No supplier could take the order"),
    (K.NOTE, {"text": "已发货，卡密已到账"}, "已发货，卡密已到账", "Delivered: your card keys are ready"),
    (K.NOTE, {"text": "客服：已补发 1 张"}, "客服：已补发 1 张", "客服：已补发 1 张"),
]


@pytest.mark.parametrize(("kind", "params", "chinese", "english"), RENDERED)
def test_each_kind_renders_in_chinese_and_english(kind: str, params: dict[str, Any], chinese: str,
                                                  english: str) -> None:
    with translation.override("zh-hans"):
        assert event_text(kind=kind, params=params) == chinese
    with translation.override("en"):
        assert event_text(kind=kind, params=params) == english


def test_every_kind_is_in_the_table_above() -> None:
    assert {kind for kind, *_ in RENDERED} == set(OrderEventKind.values)


def test_a_row_renders_in_the_active_language() -> None:
    event = OrderEvent(kind=K.PAID, params={"channel": "支付宝", "amount": "49.50"})

    with translation.override("en"):
        assert (event.message, str(event)) == ("Paid ¥49.50 with 支付宝", "Paid ¥49.50 with 支付宝")
    assert event.message == "已通过支付宝支付 ¥49.50"  # zh-Hans, the default


def test_fact_stores_values_as_strings_and_leaves_out_empty_ones() -> None:
    said = fact(K.REFUNDED, amount=Decimal("25.00"), reason="", refund="R1", count=3, missing=None)

    assert (said.kind, said.params) == (K.REFUNDED, {"amount": "25.00", "refund": "R1", "count": "3"})


def test_a_gateway_payment_says_paid_or_not_taken() -> None:
    paying = GatewayPayment(channel="支付宝", amount=Decimal("49.50"), number="P1")

    assert paying.paid().params == {"channel": "支付宝", "amount": "49.50", "payment": "P1"}
    refused = paying.not_taken(reason="订单当前状态为「%(status)s」，无需支付", reason_params={"status": "已取消"})
    assert (refused.kind, refused.params) == (K.PAYMENT_TO_WALLET, {
        "channel": "支付宝", "amount": "49.50", "payment": "P1", "reason": "订单当前状态为「%(status)s」，无需支付",
        "reason_params": {"status": "已取消"}})


def test_a_note_is_shown_as_written_even_with_percent_signs() -> None:
    said = note("优惠 100%(满减) 已生效")

    with translation.override("en"):
        assert event_text(kind=said.kind, params=said.params) == "优惠 100%(满减) 已生效"


def test_a_staff_note_with_percent_signs_fills_in_safely() -> None:
    with translation.override("en"):
        text = event_text(kind=K.DELIVERED_MANUALLY, params={"note": "50% off %(amount)s"})

    assert text == "Delivered. Delivery note: 50% off %(amount)s"


def test_an_unknown_kind_shows_its_text_rather_than_failing() -> None:
    assert event_text(kind="renamed_later", params={"text": "旧说明"}) == "旧说明"
    assert event_text(kind="renamed_later", params={}) == ""


def test_every_template_has_an_english_translation() -> None:
    templates = [template for variants in TEMPLATES.values() for template in variants]

    with translation.override("en"):
        untranslated = [template for template in templates if translation.gettext(template) == template]

    # 35, + the direct top-up steps (8), + staff's review (5), + the after-sales request and its answers (4)
    assert (len(templates), untranslated) == (52, [])


@pytest.mark.parametrize("kind", sorted(set(OrderEventKind.values) - {K.NOTE}))
def test_an_event_missing_every_value_still_renders(kind: str) -> None:
    with translation.override("en"):
        assert event_text(kind=kind, params={}) != ""
