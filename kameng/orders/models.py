"""Orders (one SKU × quantity, no cart) and the event rows that form the buyer's timeline."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from kameng.core.fields import EncryptedTextField


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "待支付"
    PAID = "paid", "已支付"
    UNDER_REVIEW = "under_review", "审核中"
    FULFILLING = "fulfilling", "发货中"
    DELIVERED = "delivered", "已发货"
    COMPLETED = "completed", "已完成"
    EXPIRED = "expired", "已过期"
    CANCELLED = "cancelled", "已取消"
    DELIVERY_FAILED = "delivery_failed", "发货失败"
    REFUNDED = "refunded", "已退款"
    PARTIALLY_REFUNDED = "partially_refunded", "部分退款"
    AFTER_SALES = "after_sales", "售后中"


class Order(models.Model):
    number = models.CharField("订单号", max_length=32, unique=True)
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="买家", on_delete=models.PROTECT,
                              related_name="orders")
    sku = models.ForeignKey("catalog.Sku", verbose_name="规格", on_delete=models.PROTECT, related_name="orders")
    # A snapshot: what the buyer saw when ordering, even if the product is renamed later.
    title = models.CharField("商品", max_length=200)
    quantity = models.PositiveIntegerField("数量")
    unit_price = models.DecimalField("单价", max_digits=12, decimal_places=2)
    # What the buyer pays in cash: the price lines' total less the points offset. ¥0.00 only for an exchange in the
    # points shop (paid wholly in points, kameng.points); a checkout always leaves at least ¥0.01.
    total_amount = models.DecimalField("总金额", max_digits=14, decimal_places=2)
    # db_default: the PostgreSQL checkout inserts orders in plain SQL and leaves this column to the database.
    refunded_amount = models.DecimalField("已退款", max_digits=14, decimal_places=2, default=Decimal("0.00"),
                                          db_default=Decimal("0.00"))
    # The adjustments the price rules made to the SKU's retail price, per unit (kameng.catalog.pricing):
    # [{"code", "label", "amount"}]; `unit_price` is the price after them. Empty when no rule applied.
    price_lines = models.JSONField("价格调整", default=list, blank=True)
    # Points (积分) the buyer used on this order and the cash they offset (kameng.catalog.pricing, step 3);
    # given back in proportion to the cash refunded (kameng.points.services).
    points_redeemed = models.PositiveIntegerField("使用积分", default=0, db_default=0)
    points_offset = models.DecimalField("积分抵扣", max_digits=14, decimal_places=2, default=Decimal("0.00"),
                                        db_default=Decimal("0.00"))
    # Where the order was placed from: unpaid orders are bounded per address too (kameng.orders.reservations).
    client_ip = models.GenericIPAddressField("下单地址", null=True, blank=True)
    # What staff wrote when delivering a manual order: shown to the buyer on the order page.
    delivery_note = models.TextField("发货说明", blank=True, default="")
    # Direct top-up: what the buyer entered (phone number, game account, region…) as a JSON object, encrypted.
    topup_target = EncryptedTextField("充值账号（密文）", null=True, blank=True)
    status = models.CharField("状态", max_length=20, choices=OrderStatus.choices,
                              default=OrderStatus.PENDING_PAYMENT)
    request_id = models.CharField("客户端请求号", max_length=64, null=True, blank=True)
    # Where it was bought, as the price function saw it: "storefront", "api" (the JSON API), "openapi" (a
    # reseller's Open API v1), "subsite:<id>" (a reseller's sub-site).
    sales_channel = models.CharField("销售渠道", max_length=40, default="storefront", db_default="storefront")
    created_at = models.DateTimeField("下单时间", auto_now_add=True)
    expires_at = models.DateTimeField("支付截止", null=True, blank=True)
    paid_at = models.DateTimeField("支付时间", null=True, blank=True)
    delivered_at = models.DateTimeField("发货时间", null=True, blank=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "订单"
        verbose_name_plural = "订单"
        ordering = ["-id"]
        constraints = [
            # No `condition`: NULLs never collide in a unique index on any backend, and MySQL/MariaDB silently
            # drop conditional unique constraints, which would lose idempotency there.
            models.UniqueConstraint(fields=["buyer", "request_id"], name="orders_order_unique_request"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orders_order_quantity_positive",
                                   violation_error_message="购买数量必须大于 0"),
            # Zero only for an order paid wholly in points (the points shop): it has points to show for it.
            models.CheckConstraint(condition=Q(total_amount__gt=0) | (Q(total_amount=0) & Q(points_redeemed__gt=0)),
                                   name="orders_order_total_positive",
                                   violation_error_message="订单总金额必须大于 0（积分兑换的订单除外）"),
            models.CheckConstraint(condition=Q(points_offset__gte=0), name="orders_order_points_offset_not_negative",
                                   violation_error_message="积分抵扣金额不能为负"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("total_amount")),
                name="orders_order_refund_within_total",
                violation_error_message="已退款金额必须在 0 到订单总金额之间：退款不能超过订单金额"),
        ]
        indexes = [
            models.Index(fields=["buyer", "-id"], name="orders_order_buyer_recent"),
            models.Index(fields=["status", "expires_at"], name="orders_order_status_expiry"),
        ]

    def __str__(self) -> str:
        return self.number


# The largest total the column holds (max_digits 14, 2 decimals). A SKU's price (12 digits) times a quantity can
# exceed it: checkout refuses that before writing, the same on every backend (PostgreSQL and strict MySQL would fail
# the INSERT, a non-strict MySQL would store a clipped total).
ORDER_TOTAL_MAX = Decimal("999999999999.99")


class OrderEventKind(models.TextChoices):
    """What an event on the timeline says; its values (amounts, channel names, notes) are in `OrderEvent.params`.

    The text is rendered from kind + params when shown, in the reader's language (kameng.orders.events).
    """

    CREATED = "created", "订单已创建"
    WALLET_PAID = "wallet_paid", "余额支付"
    PAID = "paid", "通道支付"  # params: channel, amount, payment
    UNDER_REVIEW = "under_review", "审核中"
    FULFILLING = "fulfilling", "正在发货"
    FULFILLING_MANUALLY = "fulfilling_manually", "等待人工发货"
    DELIVERED = "delivered", "已发货（卡密）"
    DELIVERED_MANUALLY = "delivered_manually", "已人工发货"  # params: note (staff's words to the buyer), optional
    COMPLETED = "completed", "已完成"
    EXPIRED = "expired", "超时关闭"
    CANCELLED = "cancelled", "已取消"
    DELIVERY_FAILED = "delivery_failed", "发货失败"  # params: reason, optional
    OUT_OF_STOCK = "out_of_stock", "库存不足"
    DELIVERY_FAILED_REFUNDED = "delivery_failed_refunded", "发货失败退款"  # params: amount
    REFUNDED = "refunded", "全额退款"  # params: amount, reason (optional)
    PARTIALLY_REFUNDED = "partially_refunded", "部分退款"  # params: amount, reason (optional)
    AFTER_SALES = "after_sales", "售后处理"  # params: reason (the buyer's, kameng.after_sales), optional
    AFTER_SALES_REJECTED = "after_sales_rejected", "售后申请未通过"  # params: reason (staff's words to the buyer)
    AFTER_SALES_WITHDRAWN = "after_sales_withdrawn", "售后申请已撤销"
    REFUNDED_TO_CHANNEL = "refunded_to_channel", "已原路退回"  # params: amount, channel, refund
    CHANNEL_REFUND_FAILED = "channel_refund_failed", "原路退款失败"  # params: amount, reason, refund
    # A gateway payment arrived but the order could not take it: params channel, amount, payment, reason
    # (a service error template) and reason_params.
    PAYMENT_TO_WALLET = "payment_to_wallet", "付款转入余额"
    # An unpaid order near its deadline gave its reserved keys to a paying buyer (kameng.orders.reservations).
    RESERVATION_RELEASED = "reservation_released", "预留已让出"
    POINTS_PAID = "points_paid", "积分兑换"  # an order paid wholly in points (the points shop)
    POINTS_REFUNDED = "points_refunded", "积分退款"  # params: points; such an order refunded in points
    # Direct top-up (kameng.suppliers): the route chosen (staff only; params supplier, price, reason), the steps
    # the buyer sees (已支付 → 正在向运营商发送请求 → 充值中 → 已到账), a confirmed failure moved to the next offer.
    ROUTED = "routed", "已分配供货商"
    TOPUP_SUBMITTING = "topup_submitting", "正在向运营商发送请求"
    TOPUP_PROCESSING = "topup_processing", "充值中"
    TOPUP_SUCCEEDED = "topup_succeeded", "已到账"  # params: operator_serial
    TOPUP_FAILED_OVER = "topup_failed_over", "换供货商重试"  # params: reason (staff only)
    # Staff only: staff settled an attempt flagged 需人工核查 after checking with the supplier (params supplier,
    # outcome, operator_serial, reason, staff); no offer could take the order at all (params detail).
    TOPUP_REVIEWED = "topup_reviewed", "人工核查直充结果"
    TOPUP_NO_ROUTE = "topup_no_route", "无可用供货商"
    NOTE = "note", "备注"  # params: text, shown as it is (a row migrated from free text, anything else)


class OrderEvent(models.Model):
    """One row per state change (and per notable fact), shown to the buyer as the order's timeline.

    There is no stored text: `kind` + `params` are the record, rendered in the reader's language when shown. A
    stored Chinese sentence would be a second source of truth that English readers cannot read and that drifts
    from the wording the moment a template changes.
    """

    order = models.ForeignKey(Order, verbose_name="订单", on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField("原状态", max_length=20, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField("新状态", max_length=20, choices=OrderStatus.choices, blank=True)
    kind = models.CharField("类型", max_length=32, choices=OrderEventKind.choices)
    # Values as strings (amounts "25.00", channel names, payment numbers, a staff note); see OrderEventKind.
    params = models.JSONField("参数", default=dict, blank=True)
    created_at = models.DateTimeField("时间", auto_now_add=True)

    class Meta:
        verbose_name = "订单事件"
        verbose_name_plural = "订单事件"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.message

    @property
    def message(self) -> str:
        """The event's text in the active language."""
        from kameng.orders.events import event_text

        return event_text(kind=self.kind, params=self.params)
