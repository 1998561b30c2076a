"""Suppliers (供货商), their offers for platform SKUs (竞价: several offers per SKU), staff routing pins, and the
direct top-up attempts (直充提交) made to a supplier for an order — each recorded before it is sent."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from kameng.core.fields import EncryptedTextField


class SupplierStatus(models.TextChoices):
    DRAFT = "draft", "资料填写中"
    PENDING_REVIEW = "pending_review", "待审核"
    NEEDS_MORE = "needs_more", "需补充资料"
    APPROVED = "approved", "已通过"
    REJECTED = "rejected", "已拒绝"
    SUSPENDED = "suspended", "已暂停"


class ConnectorKind(models.TextChoices):
    MANUAL = "manual", "手工库存（供货商后台上传卡密）"
    FULU = "fulu", "福禄开放平台协议"
    HTTP = "http", "通用 HTTP 接口"


class Supplier(models.Model):
    """A supplier's account on the platform: who logs into the console (`owner`), how its goods are reached
    (`connector_kind` + encrypted `connector_config`, a JSON object such as app key and secret), its tax
    withholding rate and its star rating (recomputed daily)."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, verbose_name="登录账号", on_delete=models.PROTECT,
                                 related_name="supplier")
    name = models.CharField("供货商名称", max_length=100)
    status = models.CharField("状态", max_length=20, choices=SupplierStatus.choices, default=SupplierStatus.DRAFT)
    connector_kind = models.CharField("对接方式", max_length=10, choices=ConnectorKind.choices,
                                      default=ConnectorKind.MANUAL)
    # JSON object (app key, secret, gateway URL, field mapping…), encrypted at rest: it holds the upstream secret.
    connector_config = EncryptedTextField("对接配置（密文）", null=True, blank=True)
    tax_rate = models.DecimalField("代扣税率", max_digits=5, decimal_places=4, default=Decimal("0.0100"),
                                   validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("0.5"))],
                                   help_text="结算时代扣代缴的比例，例如 0.01 = 1%")
    rating = models.DecimalField("星级", max_digits=3, decimal_places=2, default=Decimal("3.00"),
                                 validators=[MinValueValidator(Decimal("1")), MaxValueValidator(Decimal("5"))])
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    approved_at = models.DateTimeField("通过时间", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "供货商"
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_routable(self) -> bool:
        return self.status == SupplierStatus.APPROVED


class OfferStockSource(models.TextChoices):
    CARD_KEYS = "card_keys", "卡密库存（上传的卡密）"
    UPSTREAM = "upstream", "上游接口（直充 / 接口取卡）"


class SupplierOffer(models.Model):
    """A supplier's offer for one platform SKU: its price to the platform (our cost), where the stock comes from,
    and a daily cap. Routing picks the cheapest eligible offer; the price is copied onto what it routes, so a later
    change never touches an order already placed."""

    supplier = models.ForeignKey(Supplier, verbose_name="供货商", on_delete=models.PROTECT, related_name="offers")
    sku = models.ForeignKey("catalog.Sku", verbose_name="规格", on_delete=models.PROTECT,
                            related_name="supplier_offers")
    price = models.DecimalField("供货价", max_digits=12, decimal_places=2,
                                validators=[MinValueValidator(Decimal("0.01"))])
    stock_source = models.CharField("库存来源", max_length=10, choices=OfferStockSource.choices,
                                    default=OfferStockSource.UPSTREAM)
    # For upstream offers: the connector's product code (Fulu product_id, yile goods_id…).
    upstream_product_id = models.CharField("上游商品编号", max_length=64, blank=True)
    # Upstream stock as last synced; None: the upstream does not say (unlimited until it refuses).
    upstream_stock = models.PositiveIntegerField("上游库存", null=True, blank=True)
    max_per_day = models.PositiveIntegerField("每日上限", null=True, blank=True, help_text="留空表示不限")
    is_active = models.BooleanField("启用", default=True)
    # Staff allow routing even when the cost is above the SKU's selling price (never sell at a loss by default).
    is_loss_allowed = models.BooleanField("允许亏本供货", default=False)
    synced_at = models.DateTimeField("最近同步", null=True, blank=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "供货报价"
        ordering = ["sku_id", "price", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["supplier", "sku"], name="suppliers_offer_one_per_supplier_sku"),
            models.CheckConstraint(condition=Q(price__gt=0), name="suppliers_offer_price_positive",
                                   violation_error_message="供货价必须大于 0：请填写供货价（元）"),
        ]

    def __str__(self) -> str:
        return f"{self.supplier} · {self.sku_id} · ¥{self.price}"


class RoutingRuleKind(models.TextChoices):
    PIN = "pin", "指定（优先）"
    EXCLUDE = "exclude", "排除"


class SkuRoutingRule(models.Model):
    """Staff pin a supplier first for a SKU, or exclude it from the SKU's routing."""

    sku = models.ForeignKey("catalog.Sku", verbose_name="规格", on_delete=models.CASCADE,
                            related_name="routing_rules")
    supplier = models.ForeignKey(Supplier, verbose_name="供货商", on_delete=models.CASCADE,
                                 related_name="routing_rules")
    kind = models.CharField("规则", max_length=10, choices=RoutingRuleKind.choices)
    note = models.CharField("备注", max_length=200, blank=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "路由规则"
        constraints = [models.UniqueConstraint(fields=["sku", "supplier"], name="suppliers_routing_one_per_pair")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.supplier_id} @ {self.sku_id}"


class AttemptStatus(models.TextChoices):
    RECORDED = "recorded", "已记录（待提交）"
    PROCESSING = "processing", "充值中"
    UNKNOWN = "unknown", "结果未知（待查询）"
    SUCCEEDED = "succeeded", "已到账"
    FAILED = "failed", "失败"


class TopupAttempt(models.Model):
    """One submission of a direct top-up order to one supplier. Written (RECORDED) in the transaction that routes
    the order, before any call; the call happens after commit and its outcome is written after it. `customer_order_no`
    is the idempotency key the supplier sees: a resubmit to the same supplier reuses it, and an UNKNOWN outcome is
    queried before anything else happens. Only a confirmed failure moves on to the next offer (a new attempt)."""

    order = models.ForeignKey("orders.Order", verbose_name="订单", on_delete=models.PROTECT,
                              related_name="topup_attempts")
    offer = models.ForeignKey(SupplierOffer, verbose_name="供货报价", on_delete=models.PROTECT,
                              related_name="attempts")
    supplier = models.ForeignKey(Supplier, verbose_name="供货商", on_delete=models.PROTECT, related_name="attempts")
    sequence = models.PositiveSmallIntegerField("第几次路由")
    customer_order_no = models.CharField("提交单号", max_length=40, unique=True)
    cost = models.DecimalField("供货价（下单时）", max_digits=14, decimal_places=2)
    status = models.CharField("状态", max_length=12, choices=AttemptStatus.choices, default=AttemptStatus.RECORDED)
    supplier_order_id = models.CharField("上游订单号", max_length=64, blank=True)
    operator_serial = models.CharField("运营商流水号", max_length=100, blank=True)
    failure_code = models.CharField("失败代码", max_length=32, blank=True)
    failure_message = models.CharField("失败原因", max_length=200, blank=True)
    submit_count = models.PositiveSmallIntegerField("提交次数", default=0)
    query_count = models.PositiveSmallIntegerField("查询次数", default=0)
    next_check_at = models.DateTimeField("下次查询", null=True, blank=True, db_index=True)
    # Staff must look: a success reported for an attempt already failed over or refunded (a double delivery risk),
    # or a result still unknown after the last query allowed (kameng.suppliers.topup).
    needs_review = models.BooleanField("需人工核查", default=False, db_index=True)
    review_note = models.CharField("核查原因", max_length=200, blank=True)
    submitted_at = models.DateTimeField("提交时间", null=True, blank=True)
    finished_at = models.DateTimeField("完成时间", null=True, blank=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "直充提交"
        ordering = ["order_id", "sequence"]
        constraints = [models.UniqueConstraint(fields=["order", "sequence"], name="suppliers_attempt_sequence")]
        indexes = [models.Index(fields=["status", "next_check_at"], name="suppliers_attempt_due")]

    def __str__(self) -> str:
        return self.customer_order_no
