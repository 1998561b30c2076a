"""Migration 0005: every message the code has written reads back into its kind and params; anything else is kept
as a note. Then the whole migration, forwards and back, on a real schema."""

from __future__ import annotations

import importlib
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from kameng.orders.models import Order, OrderStatus
from tests.factories import SkuFactory, UserFactory

migration = importlib.import_module("kameng.orders.migrations.0006_typed_order_events")

# (stored message, the event's to_status, kind, params)
OLD_MESSAGES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("订单已创建，等待支付", "pending_payment", "created", {}),
    ("已使用钱包余额支付", "paid", "wallet_paid", {}),
    ("已支付", "paid", "paid", {}),
    ("已通过测试易支付支付 ¥49.50", "paid", "paid", {"channel": "测试易支付", "amount": "49.50"}),
    ("订单审核中", "under_review", "under_review", {}),
    ("正在发货", "fulfilling", "fulfilling", {}),
    ("已发货，卡密已到账", "delivered", "delivered", {}),
    ("订单已完成", "completed", "completed", {}),
    ("超时未支付，订单已关闭，库存已释放", "expired", "expired", {}),
    ("订单已取消，库存已释放", "cancelled", "cancelled", {}),
    ("发货失败", "delivery_failed", "delivery_failed", {}),
    ("库存不足，无法发货", "delivery_failed", "out_of_stock", {}),
    ("发货失败，¥19.00 已退回钱包余额", "refunded", "delivery_failed_refunded", {"amount": "19.00"}),
    ("已退款到钱包余额", "refunded", "refunded", {}),
    ("已部分退款", "partially_refunded", "partially_refunded", {}),
    ("售后处理中", "after_sales", "after_sales", {}),
    ("已支付，等待人工发货", "fulfilling", "fulfilling_manually", {}),
    ("已发货，请查看发货说明", "delivered", "delivered_manually", {}),
    ("发货失败：充值账号不存在", "delivery_failed", "delivery_failed", {"reason": "充值账号不存在"}),
    ("¥19.00 已退回钱包余额", "refunded", "delivery_failed_refunded", {"amount": "19.00"}),
    ("支付时间将到，预留的库存已让给已付款的买家；如仍需购买，付款时将从现有库存重新分配", "pending_payment",
     "reservation_released", {}),
    ("已退款 ¥50.00 到钱包余额", "refunded", "refunded", {"amount": "50.00"}),
    ("已退款 ¥25.00 到钱包余额（卡密无效）", "partially_refunded", "partially_refunded",
     {"amount": "25.00", "reason": "卡密无效"}),
    ("已退款 ¥25.00 到钱包余额（两张（重复）卡密）", "refunded", "refunded",
     {"amount": "25.00", "reason": "两张（重复）卡密"}),
    ("¥30.00 已原路退回测试易支付", "delivered", "refunded_to_channel", {"amount": "30.00", "channel": "测试易支付"}),
    ("原路退款失败（人工核实：通道未退款），¥30.00 已留在您的钱包余额", "refunded", "channel_refund_failed",
     {"amount": "30.00", "reason": "人工核实：通道未退款"}),
    ("支付宝付款 ¥9.50 已到账，但订单未能完成（订单已超时关闭，请重新下单），款项已存入您的钱包余额", "expired",
     "payment_to_wallet", {"channel": "支付宝", "amount": "9.50", "reason": "订单已超时关闭，请重新下单"}),
    # Not written by any code we know of (a hand-made row, a truncated message): kept word for word.
    ("客服已联系买家", "delivered", "note", {"text": "客服已联系买家"}),
    ("已退款 ¥25.00 到钱包余额（原因被截", "refunded", "note", {"text": "已退款 ¥25.00 到钱包余额（原因被截"}),
    ("", "delivered", "note", {"text": ""}),
]


@pytest.mark.parametrize(("message", "to_status", "kind", "params"), OLD_MESSAGES)
def test_an_old_message_becomes_its_kind_and_params(message: str, to_status: str, kind: str,
                                                    params: dict[str, Any]) -> None:
    assert migration.typed_from_message(message, to_status) == (kind, params)


def _migrate(target: list[tuple[str, str]] | None = None) -> Any:
    """Migrate to `target` (by default the latest of every app) and answer the apps as they are there."""
    executor = MigrationExecutor(connection)
    target = target or executor.loader.graph.leaf_nodes()
    executor.migrate(target)
    executor.loader.build_graph()
    return executor.loader.project_state(target).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_types_existing_rows_and_going_back_restores_the_text() -> None:
    before, after = [("orders", "0005_order_price_lines")], [("orders", "0006_typed_order_events")]
    # The order and what it refers to are made with today's models: only the events table is put back in time.
    sku = SkuFactory.create(price=Decimal("50.00"))
    order = Order.objects.create(number="K20261203000001", buyer=UserFactory.create(), sku=sku, title="月卡 30 天",
                                 quantity=1, unit_price=Decimal("50.00"), total_amount=Decimal("50.00"),
                                 status=OrderStatus.PARTIALLY_REFUNDED)
    try:
        old = _migrate(before).get_model("orders", "OrderEvent")
        for from_status, to_status, message in [
                ("", "pending_payment", "订单已创建，等待支付"),
                ("pending_payment", "paid", "已通过支付宝支付 ¥50.00"),
                ("paid", "delivered", "已发货，卡密已到账"),
                ("delivered", "partially_refunded", "已退款 ¥25.00 到钱包余额（卡密无效）"),
                ("partially_refunded", "partially_refunded", "客服已联系买家")]:
            old.objects.create(order_id=order.pk, from_status=from_status, to_status=to_status, message=message)

        typed = _migrate(after).get_model("orders", "OrderEvent")

        assert list(typed.objects.order_by("id").values_list("kind", "params")) == [
            ("created", {}),
            ("paid", {"channel": "支付宝", "amount": "50.00"}),
            ("delivered", {}),
            ("partially_refunded", {"amount": "25.00", "reason": "卡密无效"}),
            ("note", {"text": "客服已联系买家"}),
        ]

        messages = _migrate(before).get_model("orders", "OrderEvent").objects.order_by("id").values_list(
            "message", flat=True)

        assert list(messages) == ["订单已创建，等待支付", "已通过支付宝支付 ¥50.00", "已发货，卡密已到账",
                                  "已退款 ¥25.00 到钱包余额（卡密无效）", "客服已联系买家"]
    finally:
        _migrate()
