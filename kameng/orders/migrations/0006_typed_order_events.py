"""Order events become typed: `kind` + `params` instead of a stored Chinese sentence.

Every existing row's message is read back into its kind and values (`typed_from_message`, the texts the code has
written so far); a message that matches none of them becomes a `note` that keeps the text, so nothing is lost.
Then the `message` column goes: kind + params are the one record, rendered when shown.

The patterns are copied here on purpose (a migration must not change when the code does).
"""

from __future__ import annotations

import re
from typing import Any

from django.db import migrations, models

# Messages written without values, by the state machine's defaults and the services.
EXACT: dict[str, str] = {
    "订单已创建，等待支付": "created",
    "已使用钱包余额支付": "wallet_paid",
    "已支付": "paid",
    "订单审核中": "under_review",
    "正在发货": "fulfilling",
    "已发货，卡密已到账": "delivered",
    "订单已完成": "completed",
    "超时未支付，订单已关闭，库存已释放": "expired",
    "订单已取消，库存已释放": "cancelled",
    "发货失败": "delivery_failed",
    "库存不足，无法发货": "out_of_stock",
    "已退款到钱包余额": "refunded",
    "已部分退款": "partially_refunded",
    "售后处理中": "after_sales",
    # manual delivery (kameng.orders.fulfilment), written as text before events were typed
    "已支付，等待人工发货": "fulfilling_manually",
    "已发货，请查看发货说明": "delivered_manually",
    "支付时间将到，预留的库存已让给已付款的买家；如仍需购买，付款时将从现有库存重新分配": "reservation_released",
}
AMOUNT = r"(?P<amount>\d+\.\d{2})"
# Messages with values, most specific first. A `refunded` match becomes `partially_refunded` when the event
# entered that status (both wrote the same sentence).
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("payment_to_wallet", re.compile(
        rf"(?P<channel>.+?)付款 ¥{AMOUNT} 已到账，但订单未能完成（(?P<reason>.*)），款项已存入您的钱包余额")),
    ("channel_refund_failed", re.compile(rf"原路退款失败（(?P<reason>.*)），¥{AMOUNT} 已留在您的钱包余额")),
    ("refunded_to_channel", re.compile(rf"¥{AMOUNT} 已原路退回(?P<channel>.+)")),
    ("delivery_failed_refunded", re.compile(rf"(?:发货失败，)?¥{AMOUNT} 已退回钱包余额")),
    ("delivery_failed", re.compile(r"发货失败：(?P<reason>.+)")),
    ("refunded", re.compile(rf"已退款 ¥{AMOUNT} 到钱包余额(?:（(?P<reason>.*)）)?")),
    ("paid", re.compile(rf"已通过(?P<channel>.+)支付 ¥{AMOUNT}")),
)


def typed_from_message(message: str, to_status: str) -> tuple[str, dict[str, Any]]:
    """The kind and params of an event written as free text."""
    if message in EXACT:
        return EXACT[message], {}
    for kind, pattern in PATTERNS:
        match = pattern.fullmatch(message)
        if match is None:
            continue
        params = {name: value for name, value in match.groupdict().items() if value}
        if kind == "refunded" and to_status == "partially_refunded":
            kind = "partially_refunded"
        return kind, params
    return "note", {"text": message}


def forwards(apps: Any, schema_editor: Any) -> None:
    order_event = apps.get_model("orders", "OrderEvent")
    changed = []
    for event in order_event.objects.only("id", "message", "to_status").iterator(chunk_size=2000):
        event.kind, event.params = typed_from_message(event.message, event.to_status)
        changed.append(event)
        if len(changed) >= 2000:
            order_event.objects.bulk_update(changed, ["kind", "params"])
            changed = []
    order_event.objects.bulk_update(changed, ["kind", "params"])


def backwards(apps: Any, schema_editor: Any) -> None:
    """Write the text back in Chinese, as the renderer shows it today."""
    from django.utils import translation

    from kameng.orders.events import event_text

    order_event = apps.get_model("orders", "OrderEvent")
    changed = []
    with translation.override("zh-hans"):
        for event in order_event.objects.only("id", "kind", "params").iterator(chunk_size=2000):
            event.message = event_text(kind=event.kind, params=event.params)[:300]
            changed.append(event)
    order_event.objects.bulk_update(changed, ["message"], batch_size=2000)


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0005_order_price_lines"),
    ]

    operations = [
        migrations.AddField(
            model_name="orderevent",
            name="kind",
            field=models.CharField(choices=[
                ("created", "订单已创建"), ("wallet_paid", "余额支付"), ("paid", "通道支付"),
                ("under_review", "审核中"), ("fulfilling", "正在发货"), ("fulfilling_manually", "等待人工发货"),
                ("delivered", "已发货（卡密）"), ("delivered_manually", "已人工发货"), ("completed", "已完成"),
                ("expired", "超时关闭"), ("cancelled", "已取消"), ("delivery_failed", "发货失败"),
                ("out_of_stock", "库存不足"), ("delivery_failed_refunded", "发货失败退款"), ("refunded", "全额退款"),
                ("partially_refunded", "部分退款"), ("after_sales", "售后处理"), ("refunded_to_channel", "已原路退回"),
                ("channel_refund_failed", "原路退款失败"), ("payment_to_wallet", "付款转入余额"),
                ("reservation_released", "预留已让出"), ("note", "备注"),
            ], default="note", max_length=32, verbose_name="类型"),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="orderevent",
            name="params",
            field=models.JSONField(blank=True, default=dict, verbose_name="参数"),
        ),
        # Going back re-adds the column empty before filling it in: give it a default for that.
        migrations.AlterField(
            model_name="orderevent",
            name="message",
            field=models.CharField(default="", max_length=300, verbose_name="说明"),
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
        migrations.RemoveField(
            model_name="orderevent",
            name="message",
        ),
    ]
