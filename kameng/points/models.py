"""Points (积分): what each order earned and gave back, and the points shop (积分商城).

The points themselves live on the ledger (unit PTS: the buyer's `points` account, kameng.ledger); these rows only
say which order a movement belongs to and what is on offer for points.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class OrderPoints(models.Model):
    """The points of one order as the ledger holds them, brought in line with the order's state by
    `kameng.points.services.order_points_settle` (each change a new journal, never an edit)."""

    order = models.OneToOneField("orders.Order", verbose_name="订单", on_delete=models.PROTECT,
                                 related_name="points_record")
    # Net points this order earned: floor(cash kept × rate) while the order stands, less what refunds took back.
    earned = models.PositiveIntegerField("获得积分", default=0)
    # Points used on the order (Order.points_redeemed) given back because of refunds.
    returned = models.PositiveIntegerField("退回积分", default=0)
    # Points a refund should have taken back but the buyer had already spent: not taken, recorded here.
    shortfall = models.PositiveIntegerField("未能扣回积分", default=0)
    # Journals posted for this order so far: the next one's reference is order:<number>:<journals + 1>.
    journals = models.PositiveIntegerField("凭证数", default=0)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "订单积分"
        verbose_name_plural = "订单积分"

    def __str__(self) -> str:
        return f"{self.order_id}: +{self.earned}"


class PointsShopItem(models.Model):
    """Goods offered for points in the points shop: a card-key SKU, its price in points, a limit per buyer."""

    sku = models.ForeignKey("catalog.Sku", verbose_name="规格", on_delete=models.PROTECT,
                            related_name="points_shop_items")
    points_price = models.PositiveIntegerField("所需积分", help_text="兑换一件所需的积分")
    per_buyer_limit = models.PositiveIntegerField("每人限兑", default=0, help_text="每位买家最多兑换的件数；0 表示不限")
    is_active = models.BooleanField("上架", default=True)
    sort_order = models.IntegerField("排序", default=0)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = "积分商城商品"
        verbose_name_plural = "积分商城商品"
        ordering = ["sort_order", "id"]
        constraints = [models.CheckConstraint(condition=Q(points_price__gt=0), name="points_item_price_positive",
                                              violation_error_message="所需积分必须大于 0")]

    def __str__(self) -> str:
        return f"{self.sku} · {self.points_price} 积分"


class PointsExchange(models.Model):
    """One exchange in the points shop: the order it made (paid wholly in points)."""

    item = models.ForeignKey(PointsShopItem, verbose_name="积分商品", on_delete=models.PROTECT,
                             related_name="exchanges")
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="买家", on_delete=models.PROTECT,
                              related_name="points_exchanges")
    order = models.OneToOneField("orders.Order", verbose_name="订单", on_delete=models.PROTECT,
                                 related_name="points_exchange")
    quantity = models.PositiveIntegerField("数量")
    points = models.PositiveIntegerField("积分")
    created_at = models.DateTimeField("兑换时间", auto_now_add=True)

    class Meta:
        verbose_name = "积分兑换记录"
        verbose_name_plural = "积分兑换记录"
        ordering = ["-id"]
        indexes = [models.Index(fields=["buyer", "item"], name="points_exchange_buyer_item")]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.points}"
