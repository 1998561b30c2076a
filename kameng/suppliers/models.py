"""Suppliers (供货商), their offers for platform SKUs (竞价: several offers per SKU), staff routing pins, and the
direct top-up attempts (直充提交) made to a supplier for an order — each recorded before it is sent."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
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
    KAMENG = "kameng", "卡盟站点对接（Open API v1）"


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
    # Price and stock sync (kameng.suppliers.sync): when it last ran and why it failed ("" = it worked); the offers
    # keep their last known values while the upstream is down.
    last_sync_at = models.DateTimeField("最近同步尝试", null=True, blank=True)
    last_sync_error = models.CharField("最近同步错误", max_length=200, blank=True)

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

    # Every update of an attempt (claim, answer, a callback's prompt) changes next_check_at or status, which are
    # indexed, so none is HOT and each writes every index: the table keeps only the indexes its queries use
    # (bench/README.md, "Direct top-ups: where a call's second went"). The order's is the unique
    # (order, sequence) one, the number's the plain unique one (no LIKE index), next_check_at's the due one.
    order = models.ForeignKey("orders.Order", verbose_name="订单", on_delete=models.PROTECT,
                              related_name="topup_attempts", db_index=False)
    offer = models.ForeignKey(SupplierOffer, verbose_name="供货报价", on_delete=models.PROTECT,
                              related_name="attempts")
    supplier = models.ForeignKey(Supplier, verbose_name="供货商", on_delete=models.PROTECT, related_name="attempts")
    sequence = models.PositiveSmallIntegerField("第几次路由")
    customer_order_no = models.CharField("提交单号", max_length=40)
    cost = models.DecimalField("供货价（下单时）", max_digits=14, decimal_places=2,
                               help_text="本次提交的总成本（数量 × 单价），结算时按此金额计入供货商应付")
    status = models.CharField("状态", max_length=12, choices=AttemptStatus.choices, default=AttemptStatus.RECORDED)
    supplier_order_id = models.CharField("上游订单号", max_length=64, blank=True)
    operator_serial = models.CharField("运营商流水号", max_length=100, blank=True)
    failure_code = models.CharField("失败代码", max_length=32, blank=True)
    failure_message = models.CharField("失败原因", max_length=200, blank=True)
    submit_count = models.PositiveSmallIntegerField("提交次数", default=0)
    # A submit was claimed and its answer is not written yet (in flight, or lost with a dead worker): a query's "no
    # such order" then proves nothing, and the number is never submitted again while this holds.
    is_submit_outstanding = models.BooleanField("提交待应答", default=False)
    query_count = models.PositiveSmallIntegerField("查询次数", default=0)
    next_check_at = models.DateTimeField("下次查询", null=True, blank=True)
    # Staff must look: a success reported for an attempt already failed over or refunded (a double delivery risk),
    # or a result still unknown after the last query allowed (kameng.suppliers.topup).
    needs_review = models.BooleanField("需人工核查", default=False)
    review_note = models.CharField("核查原因", max_length=200, blank=True)
    submitted_at = models.DateTimeField("提交时间", null=True, blank=True)
    finished_at = models.DateTimeField("完成时间", null=True, blank=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "直充提交"
        ordering = ["order_id", "sequence"]
        constraints = [models.UniqueConstraint(fields=["order", "sequence"], name="suppliers_attempt_sequence"),
                       models.UniqueConstraint(fields=["customer_order_no"], name="suppliers_attempt_number")]
        indexes = [models.Index(fields=["status", "next_check_at"], name="suppliers_attempt_due"),
                   models.Index(fields=["needs_review"], condition=models.Q(needs_review=True),
                                name="suppliers_attempt_review")]

    def __str__(self) -> str:
        return self.customer_order_no


class RestockStatus(models.TextChoices):
    OPEN = "open", "待处理"
    ACKNOWLEDGED = "acknowledged", "已确认"
    RESTOCKED = "restocked", "已补货"


class WebhookStatus(models.TextChoices):
    NONE = "", "未配置"
    PENDING = "pending", "待发送"
    DELIVERED = "delivered", "已送达"
    FAILED = "failed", "被拒绝（不重试）"
    GIVEN_UP = "given_up", "多次失败，已放弃"


class RestockRequest(models.Model):
    """A request to a supplier to restock one offer (补货提醒), raised when the offer's stock falls to the product's
    low-stock threshold. At most one is open per offer; the supplier acknowledges it and marks it restocked in its
    console, and it is closed by itself when the stock is back above the threshold. The supplier is told on its
    console, by a signed webhook (every attempt stored) and by e-mail, as it configured."""

    offer = models.ForeignKey(SupplierOffer, verbose_name="供货报价", on_delete=models.CASCADE,
                              related_name="restock_requests")
    supplier = models.ForeignKey(Supplier, verbose_name="供货商", on_delete=models.CASCADE,
                                 related_name="restock_requests")
    status = models.CharField("状态", max_length=12, choices=RestockStatus.choices, default=RestockStatus.OPEN)
    stock_at_raise = models.PositiveIntegerField("提醒时库存")
    threshold = models.PositiveIntegerField("提醒阈值")
    webhook_status = models.CharField("Webhook 状态", max_length=10, choices=WebhookStatus.choices, blank=True,
                                      default=WebhookStatus.NONE)
    webhook_attempt_count = models.PositiveSmallIntegerField("Webhook 尝试次数", default=0)
    webhook_next_at = models.DateTimeField("Webhook 下次发送", null=True, blank=True, db_index=True)
    email_sent_at = models.DateTimeField("邮件发送时间", null=True, blank=True)
    created_at = models.DateTimeField("提醒时间", auto_now_add=True)
    acknowledged_at = models.DateTimeField("确认时间", null=True, blank=True)
    restocked_at = models.DateTimeField("补货时间", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "补货提醒"
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["offer"], condition=Q(status__in=["open", "acknowledged"]),
                                    name="suppliers_restock_one_open_per_offer"),
        ]

    def __str__(self) -> str:
        return f"补货提醒 {self.pk} · {self.offer_id}"

    @property
    def is_open(self) -> bool:
        return self.status != RestockStatus.RESTOCKED


class RestockWebhookAttempt(models.Model):
    """One POST of a restock request's webhook to the supplier, whatever came of it."""

    request = models.ForeignKey(RestockRequest, verbose_name="补货提醒", on_delete=models.CASCADE,
                                related_name="webhook_attempts")
    number = models.PositiveSmallIntegerField("第几次")
    status_code = models.PositiveSmallIntegerField("HTTP 状态", null=True, blank=True)
    error = models.CharField("错误", max_length=200, blank=True)
    duration_ms = models.PositiveIntegerField("耗时（毫秒）", default=0)
    created_at = models.DateTimeField("发送时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "补货 Webhook 发送记录"
        ordering = ["request_id", "number"]
        constraints = [models.UniqueConstraint(fields=["request", "number"], name="suppliers_restock_attempt_once")]

    def __str__(self) -> str:
        return f"{self.request_id}#{self.number}"
# --- ratings (kameng/suppliers/ratings.py) -------------------------------------------------------------------------

WEIGHT_FIELDS = ("success_weight", "delivery_weight", "after_sales_weight", "price_weight", "stock_weight")


def _weight(label: str, default: str) -> models.DecimalField:
    return models.DecimalField(label, max_digits=4, decimal_places=3, default=Decimal(default),
                               validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))])


class RatingWeights(models.Model):
    """The weights of the five rating components, set by staff (one row, pk 1); they sum to 1."""

    success_weight = _weight("成功率权重", "0.350")
    delivery_weight = _weight("到账时间权重", "0.200")
    after_sales_weight = _weight("售后率权重", "0.200")
    price_weight = _weight("价格竞争力权重", "0.150")
    stock_weight = _weight("库存稳定性权重", "0.100")
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "星级权重"

    def __str__(self) -> str:
        return "星级权重"

    def clean(self) -> None:
        total = sum((getattr(self, name) or Decimal("0") for name in WEIGHT_FIELDS), Decimal("0"))
        if total != Decimal("1"):
            raise ValidationError("五项权重之和必须等于 1（当前为 %(total)s）", params={"total": total})

    @classmethod
    def current(cls) -> RatingWeights:
        weights, _ = cls.objects.get_or_create(pk=1)
        return weights


class RatingSnapshot(models.Model):
    """A supplier's rating as computed on one day: the raw figures, each component normalised to 0..1, the stars and
    the reasons shown to the supplier. One per supplier per day: recomputing the same day replaces it."""

    supplier = models.ForeignKey(Supplier, verbose_name="供货商", on_delete=models.CASCADE,
                                 related_name="rating_snapshots")
    day = models.DateField("日期")
    stars = models.DecimalField("星级", max_digits=3, decimal_places=2)
    score = models.DecimalField("综合得分", max_digits=5, decimal_places=4, null=True, blank=True)
    is_provisional = models.BooleanField("数据不足（按 3 星）", default=False)
    orders_count = models.PositiveIntegerField("窗口内订单数", default=0)
    success_rate = models.DecimalField("成功率", max_digits=5, decimal_places=4, null=True, blank=True)
    delivery_seconds = models.PositiveIntegerField("到账时间中位数（秒）", null=True, blank=True)
    after_sales_rate = models.DecimalField("售后率", max_digits=5, decimal_places=4, null=True, blank=True)
    price_premium = models.DecimalField("平均高于最低价", max_digits=7, decimal_places=4, null=True, blank=True)
    stock_sample = models.DecimalField("当日有货报价占比", max_digits=5, decimal_places=4, null=True, blank=True)
    stock_stability = models.DecimalField("有货率", max_digits=5, decimal_places=4, null=True, blank=True)
    # Each component normalised to 0..1: {"success": "0.6000", "delivery": …, "after_sales": …, "price": …, "stock": …}
    components = models.JSONField("各项得分", default=dict)
    reasons = models.TextField("原因", blank=True)
    created_at = models.DateTimeField("计算时间", auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "星级快照"
        ordering = ["-day", "supplier_id"]
        constraints = [models.UniqueConstraint(fields=["supplier", "day"], name="suppliers_rating_one_per_day")]

    def __str__(self) -> str:
        return f"{self.supplier_id} · {self.day} · {self.stars}"

    @property
    def reason_lines(self) -> list[str]:
        return [line for line in self.reasons.splitlines() if line]
# --- settlement and withdrawals (kameng.suppliers.settlement, kameng.suppliers.withdrawals) -------------------------


class SupplierSettlement(models.Model):
    """What one order owes one supplier, as booked: created when the order is first settled, moved by every
    reversal. `cost` and `tax` are what is booked now (after reversals); `delivered_cost` is the cost at delivery
    and `tax_rate` the rate then, kept so a later change of the supplier's rate never changes a reversal."""

    order = models.ForeignKey("orders.Order", verbose_name="订单", on_delete=models.PROTECT,
                              related_name="supplier_settlements")
    supplier = models.ForeignKey(Supplier, verbose_name="供货商", on_delete=models.PROTECT, related_name="settlements")
    tax_rate = models.DecimalField("代扣税率", max_digits=5, decimal_places=4)
    delivered_cost = models.DecimalField("供货成本（交付时）", max_digits=14, decimal_places=2)
    cost = models.DecimalField("已结算成本", max_digits=14, decimal_places=2)
    tax = models.DecimalField("已代扣税费", max_digits=14, decimal_places=2)
    journals = models.PositiveIntegerField("凭证数", default=0)
    created_at = models.DateTimeField("结算时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "供货商结算"
        ordering = ["-pk"]
        constraints = [models.UniqueConstraint(fields=["order", "supplier"], name="suppliers_settlement_once")]

    def __str__(self) -> str:
        return f"{self.supplier_id} · {self.order_id}"


class SettlementMovementKind(models.TextChoices):
    SETTLEMENT = "settlement", "结算"
    REVERSAL = "reversal", "退款冲回"


class SettlementMovement(models.Model):
    """One journal of a settlement, with its parts (all positive; `kind` says the direction): the cost, the tax
    withheld, what went to or came from the payable, and the supplier's debt paid down (settlement) or incurred
    (reversal). Monthly statements and the tax report add these up by the journal's time."""

    settlement = models.ForeignKey(SupplierSettlement, verbose_name="结算", on_delete=models.PROTECT,
                                   related_name="movements")
    supplier = models.ForeignKey(Supplier, verbose_name="供货商", on_delete=models.PROTECT,
                                 related_name="settlement_movements")
    journal = models.OneToOneField("ledger.Journal", verbose_name="记账凭证", on_delete=models.PROTECT,
                                   related_name="settlement_movement")
    kind = models.CharField("类型", max_length=12, choices=SettlementMovementKind.choices)
    cost = models.DecimalField("成本", max_digits=14, decimal_places=2)
    tax = models.DecimalField("税费", max_digits=14, decimal_places=2)
    payable = models.DecimalField("应付变动", max_digits=14, decimal_places=2)
    debt = models.DecimalField("欠款变动", max_digits=14, decimal_places=2)

    class Meta:
        verbose_name = verbose_name_plural = "结算明细"
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.cost}"


class WithdrawalStatus(models.TextChoices):
    REQUESTED = "requested", "待审核"
    PAID = "paid", "已打款"
    REJECTED = "rejected", "已驳回"


SUPPLIER_WITHDRAWAL_ACCOUNT_NAME_CONTEXT = "suppliers.supplierwithdrawal.account_name"


class SupplierWithdrawal(models.Model):
    """A supplier's withdrawal (提现) of its earned payable to a bank account, reviewed by staff. The money left
    the payable when it was requested; staff pay it by bank transfer outside the system (the transfer reference is
    recorded) or reject it with a reason (the money goes back). The account number and the holder's name (户名,
    often a person's) are encrypted at rest; both are shown in full only on the page where staff pay it."""

    number = models.CharField("提现单号", max_length=32, unique=True)
    supplier = models.ForeignKey(Supplier, verbose_name="供货商", on_delete=models.PROTECT,
                                 related_name="withdrawals")
    amount = models.DecimalField("金额", max_digits=14, decimal_places=2)
    bank_name = models.CharField("开户银行", max_length=100)
    account_name = EncryptedTextField("户名", context=SUPPLIER_WITHDRAWAL_ACCOUNT_NAME_CONTEXT)
    account_number = EncryptedTextField("银行账号（密文）")
    status = models.CharField("状态", max_length=10, choices=WithdrawalStatus.choices,
                              default=WithdrawalStatus.REQUESTED)
    request_id = models.CharField("客户端请求号", max_length=64, null=True, blank=True)
    transfer_reference = models.CharField("转账流水号", max_length=100, blank=True)
    rejection_reason = models.CharField("驳回原因", max_length=200, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="审核人", null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField("审核时间", null=True, blank=True)
    created_at = models.DateTimeField("申请时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "供货商提现"
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(fields=["supplier", "request_id"], name="suppliers_withdrawal_unique_request"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="suppliers_withdrawal_amount_positive",
                                   violation_error_message="提现金额必须大于 0"),
        ]

    def __str__(self) -> str:
        return self.number


class TaxReportExport(models.Model):
    """Who exported the quarterly tax report (it holds full ID numbers: a staff-only, logged export)."""

    quarter = models.CharField("季度", max_length=6)
    file_format = models.CharField("格式", max_length=4)
    exported_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="导出人", null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
    via = models.CharField("途径", max_length=20)
    rows = models.PositiveIntegerField("行数")
    created_at = models.DateTimeField("导出时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "税务报送导出记录"
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.quarter} {self.file_format}"
# --- Onboarding (入驻): company data, qualification documents, agreement, legal person, review, sample tests ------
# The services are in kameng/suppliers/onboarding.py (steps, submit, review), documents.py (private files) and
# sampling.py (样品测试).

SUPPLIER_CONTACT_NAME_CONTEXT = "suppliers.profile.contact_name"
SUPPLIER_CONTACT_PHONE_CONTEXT = "suppliers.profile.contact_phone"
SUPPLIER_LEGAL_PERSON_NAME_CONTEXT = "suppliers.profile.legal_person_name"


class SupplierProfile(models.Model):
    """The company behind a supplier (企业资料): its name and 统一社会信用代码, the legal person (法定代表人), a
    contact, and what it may sell. Personal data is encrypted. The legal person's real-name verification is the
    owner account's (kameng.accounts RealName), linked here once its name and ID number are the legal person's."""

    supplier = models.OneToOneField(Supplier, verbose_name="供货商", on_delete=models.CASCADE, related_name="profile")
    company_name = models.CharField("企业名称", max_length=100)
    credit_code = models.CharField("统一社会信用代码", max_length=18)
    legal_person_name = EncryptedTextField("法定代表人姓名", context=SUPPLIER_LEGAL_PERSON_NAME_CONTEXT)
    contact_name = EncryptedTextField("联系人", context=SUPPLIER_CONTACT_NAME_CONTEXT)
    contact_phone = EncryptedTextField("联系电话", context=SUPPLIER_CONTACT_PHONE_CONTEXT)
    business_scope = models.TextField("经营范围", blank=True)
    legal_person_real_name = models.ForeignKey("accounts.RealName", verbose_name="法人实名", null=True, blank=True,
                                               on_delete=models.SET_NULL, related_name="+")
    legal_person_verified_at = models.DateTimeField("法人实名时间", null=True, blank=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "企业资料"

    def __str__(self) -> str:
        return self.company_name


class DocumentKind(models.TextChoices):
    BUSINESS_LICENCE = "business_licence", "营业执照"
    INDUSTRY_AUTHORISATION = "industry_authorisation", "行业授权"
    PRODUCT_AUTHORISATION = "product_authorisation", "商品授权协议"


class SupplierDocument(models.Model):
    """A qualification document (资质文件). The file lives in the private documents directory (never under
    MEDIA_ROOT), named by a random token; only its owner and staff read it, through a permission-checked view."""

    supplier = models.ForeignKey(Supplier, verbose_name="供货商", on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField("类型", max_length=30, choices=DocumentKind.choices)
    # A 商品授权协议 is about one product's source; the other kinds are about the company.
    product = models.ForeignKey("catalog.Product", verbose_name="商品", null=True, blank=True,
                                on_delete=models.PROTECT, related_name="+")
    original_name = models.CharField("原文件名", max_length=200)
    stored_name = models.CharField("存储名", max_length=80, unique=True, editable=False)
    content_type = models.CharField("文件类型", max_length=40)
    size = models.PositiveIntegerField("大小（字节）")
    sha256 = models.CharField("内容摘要（SHA-256）", max_length=64)
    uploaded_at = models.DateTimeField("上传时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "资质文件"
        ordering = ["supplier_id", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.original_name}"


class SupplierAgreement(models.Model):
    """A version of the supplier agreement (供货商协议). The newest published one is current: a supplier must
    have accepted it, so publishing a new version asks every supplier to accept again."""

    version = models.CharField("版本", max_length=20, unique=True)
    text = models.TextField("协议正文")
    published_at = models.DateTimeField("发布时间", db_index=True)

    class Meta:
        verbose_name = verbose_name_plural = "供货商协议"
        ordering = ["-published_at", "-pk"]

    def __str__(self) -> str:
        return f"供货商协议 {self.version}"


class AgreementAcceptance(models.Model):
    supplier = models.ForeignKey(Supplier, verbose_name="供货商", on_delete=models.CASCADE,
                                 related_name="agreement_acceptances")
    agreement = models.ForeignKey(SupplierAgreement, verbose_name="协议", on_delete=models.PROTECT,
                                  related_name="acceptances")
    version = models.CharField("版本", max_length=20)
    accepted_at = models.DateTimeField("同意时间", auto_now_add=True)
    ip_address = models.GenericIPAddressField("同意时的地址", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "协议同意记录"
        ordering = ["-accepted_at"]
        constraints = [models.UniqueConstraint(fields=["supplier", "agreement"], name="suppliers_accept_once")]

    def __str__(self) -> str:
        return f"{self.supplier_id} · {self.version}"


class SupplierReview(models.Model):
    """One status change of a supplier (提交审核, 通过, 拒绝, 需补充): its timeline, and the reason it sees."""

    supplier = models.ForeignKey(Supplier, verbose_name="供货商", on_delete=models.CASCADE, related_name="reviews")
    from_status = models.CharField("原状态", max_length=20, choices=SupplierStatus.choices)
    to_status = models.CharField("新状态", max_length=20, choices=SupplierStatus.choices)
    reason = models.TextField("原因", blank=True)
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="审核人", null=True, blank=True,
                              on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField("时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "审核记录"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.supplier_id}: {self.from_status} → {self.to_status}"


class SampleResult(models.TextChoices):
    PENDING = "pending", "待验证"
    VALID = "valid", "有效"
    INVALID = "invalid", "无效"


class SampleTest(models.Model):
    """A sample test (样品测试) of a supplier's goods before approval, recorded by staff: what was taken, how long
    delivery took, whether the goods worked. Card keys taken as samples are the supplier's own keys, sold at cost
    outside any buyer order; their ids are kept here (`card_key_ids`)."""

    supplier = models.ForeignKey(Supplier, verbose_name="供货商", on_delete=models.CASCADE,
                                 related_name="sample_tests")
    offer = models.ForeignKey(SupplierOffer, verbose_name="供货报价", on_delete=models.PROTECT,
                              related_name="sample_tests")
    quantity = models.PositiveIntegerField("数量", validators=[MinValueValidator(1)])
    ordered_at = models.DateTimeField("下单时间")
    delivered_at = models.DateTimeField("到货时间", null=True, blank=True)
    result = models.CharField("结果", max_length=10, choices=SampleResult.choices, default=SampleResult.PENDING)
    note = models.TextField("说明", blank=True)
    cost = models.DecimalField("样品成本", max_digits=14, decimal_places=2, default=Decimal("0.00"))
    card_key_ids = models.JSONField("样品卡密编号", default=list, blank=True, editable=False)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="记录人", null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "样品测试"
        ordering = ["-ordered_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(delivered_at__isnull=True) | Q(delivered_at__gte=models.F("ordered_at")),
                                   name="suppliers_sample_delivered_after_ordered",
                                   violation_error_message="到货时间不能早于下单时间"),
        ]

    def __str__(self) -> str:
        return f"样品测试 #{self.pk}"

    def clean(self) -> None:
        if self.offer_id is not None and self.supplier_id is not None \
                and self.offer.supplier_id != self.supplier_id:
            raise ValidationError({"offer": "该报价不属于此供货商"})

    @property
    def delivery_seconds(self) -> int | None:
        if self.delivered_at is None:
            return None
        return int((self.delivered_at - self.ordered_at).total_seconds())
