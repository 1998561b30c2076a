"""Resellers (代理分销): tiers and their prices, the reseller accounts, their Open API keys and the orders placed
through them with their notification deliveries, sub-sites (分站), invitation attribution and earnings (the
sub-site margin and the commissions up the invitation chain).

Money never lives here: an earning's amount moves through ledger journals (kameng.ledger.recipes); these rows
record what is owed to whom and in which state.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from kameng.core.fields import EncryptedTextField


class ResellerTier(models.Model):
    """A reseller tier (普通代理, 高级代理, 总代理). Its price for a SKU is the SKU's TierPrice if there is one, else
    the retail price less `discount_percent`; never below the platform's cost (refused when staff set it)."""

    name = models.CharField("等级名称", max_length=30, unique=True)
    rank = models.PositiveSmallIntegerField("级别", default=1, help_text="数字越大级别越高")
    discount_percent = models.DecimalField("默认折扣（%）", max_digits=5, decimal_places=2, default=Decimal("0.00"),
                                           help_text="未单独设置价格的规格按零售价减此百分比")
    subsite_markup_cap_percent = models.DecimalField("分站加价上限（%）", max_digits=6, decimal_places=2,
                                                     default=Decimal("50.00"))
    is_active = models.BooleanField("启用", default=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "代理等级"
        ordering = ["rank", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(discount_percent__gte=0) & Q(discount_percent__lt=100),
                                   name="resellers_tier_discount_range",
                                   violation_error_message="折扣须在 0 到 100 之间（不含 100）"),
            models.CheckConstraint(condition=Q(subsite_markup_cap_percent__gte=0),
                                   name="resellers_tier_markup_cap_not_negative",
                                   violation_error_message="加价上限不能为负"),
        ]

    def __str__(self) -> str:
        return self.name


class TierPriceKind(models.TextChoices):
    INHERIT = "inherit", "继承默认折扣"
    PERCENT = "percent", "零售价百分比折扣"
    FIXED = "fixed", "固定价格"


class TierPrice(models.Model):
    """A tier's price for one SKU."""

    tier = models.ForeignKey(ResellerTier, verbose_name="代理等级", on_delete=models.CASCADE, related_name="prices")
    sku = models.ForeignKey("catalog.Sku", verbose_name="规格", on_delete=models.CASCADE, related_name="tier_prices")
    kind = models.CharField("定价方式", max_length=10, choices=TierPriceKind.choices, default=TierPriceKind.INHERIT)
    percent_off = models.DecimalField("折扣（%）", max_digits=5, decimal_places=2, null=True, blank=True)
    fixed_price = models.DecimalField("固定价格", max_digits=12, decimal_places=2, null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "代理等级价格"
        constraints = [
            models.UniqueConstraint(fields=["tier", "sku"], name="resellers_tierprice_one_per_sku"),
            models.CheckConstraint(condition=Q(percent_off__isnull=True) | (Q(percent_off__gte=0)
                                                                             & Q(percent_off__lt=100)),
                                   name="resellers_tierprice_percent_range",
                                   violation_error_message="折扣须在 0 到 100 之间（不含 100）"),
            models.CheckConstraint(condition=Q(fixed_price__isnull=True) | Q(fixed_price__gt=0),
                                   name="resellers_tierprice_fixed_positive",
                                   violation_error_message="固定价格必须大于 0"),
        ]

    def __str__(self) -> str:
        return f"{self.tier} · {self.sku_id}"


class ResellerStatus(models.TextChoices):
    PENDING = "pending", "申请中"
    ACTIVE = "active", "正常"
    REJECTED = "rejected", "已拒绝"
    SUSPENDED = "suspended", "已停用"


RESELLER_CONTACT_CONTEXT = "resellers.reseller.contact"


class Reseller(models.Model):
    """A buyer who resells: applied (or appointed by staff), reviewed, then priced at its tier."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, verbose_name="用户", on_delete=models.PROTECT,
                                related_name="reseller")
    tier = models.ForeignKey(ResellerTier, verbose_name="代理等级", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="resellers")
    status = models.CharField("状态", max_length=10, choices=ResellerStatus.choices, default=ResellerStatus.PENDING,
                              db_index=True)
    application_note = models.TextField("申请说明", blank=True, default="")
    # A phone number, a QQ or a WeChat id: personal data, encrypted at rest (shown to staff reviewing the application).
    contact = EncryptedTextField("联系方式", blank=True, default="", context=RESELLER_CONTACT_CONTEXT)
    review_reason = models.CharField("审核意见", max_length=200, blank=True, default="")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="审核人", null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField("审核时间", null=True, blank=True)
    created_at = models.DateTimeField("申请时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "代理商"
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"代理 #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status == ResellerStatus.ACTIVE


class ApiKey(models.Model):
    """An Open API v1 key: `key_id` is public (X-Kameng-Key), the secret is shown once and stored encrypted."""

    reseller = models.ForeignKey(Reseller, verbose_name="代理商", on_delete=models.CASCADE, related_name="api_keys")
    key_id = models.CharField("密钥 ID", max_length=40, unique=True)
    secret = EncryptedTextField("密钥（密文）")
    name = models.CharField("名称", max_length=60)
    ip_allowlist = models.TextField("IP 白名单", blank=True, default="", help_text="每行一个 IP 或 CIDR；留空不限制")
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    last_used_at = models.DateTimeField("最近使用", null=True, blank=True)
    revoked_at = models.DateTimeField("吊销时间", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "API 密钥"
        ordering = ["-pk"]

    def __str__(self) -> str:
        return self.key_id

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class OpenApiOrder(models.Model):
    """An order placed through the Open API: its request number (unique per reseller), the digest of the request
    body that created it (the same request_no with another body is a conflict) and where to notify."""

    order = models.OneToOneField("orders.Order", verbose_name="订单", on_delete=models.PROTECT,
                                 related_name="openapi")
    reseller = models.ForeignKey(Reseller, verbose_name="代理商", on_delete=models.PROTECT,
                                 related_name="openapi_orders")
    api_key = models.ForeignKey(ApiKey, verbose_name="API 密钥", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="orders")
    request_no = models.CharField("请求号", max_length=64)
    body_digest = models.CharField("请求摘要", max_length=64)
    notify_url = models.CharField("回调地址", max_length=500, blank=True, default="")
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "开放接口订单"
        ordering = ["-pk"]
        constraints = [models.UniqueConstraint(fields=["reseller", "request_no"],
                                               name="resellers_openapiorder_unique_request")]

    def __str__(self) -> str:
        return self.request_no


class NotifyState(models.TextChoices):
    PENDING = "pending", "待发送"
    RETRYING = "retrying", "重试中"
    DELIVERED = "delivered", "已送达"
    GAVE_UP = "gave_up", "已放弃"


class NotifyDelivery(models.Model):
    """One notification of an order's status to its notify_url; each try is a NotifyAttempt."""

    openapi_order = models.ForeignKey(OpenApiOrder, verbose_name="开放接口订单", on_delete=models.CASCADE,
                                      related_name="deliveries")
    status = models.CharField("通知的订单状态", max_length=20)
    url = models.CharField("回调地址", max_length=500)
    payload = models.JSONField("内容（不含卡密明文）", default=dict)
    state = models.CharField("状态", max_length=10, choices=NotifyState.choices, default=NotifyState.PENDING,
                             db_index=True)
    attempts = models.PositiveSmallIntegerField("已尝试次数", default=0)
    next_attempt_at = models.DateTimeField("下次尝试", null=True, blank=True, db_index=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    finished_at = models.DateTimeField("结束时间", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "回调通知"
        ordering = ["-pk"]
        constraints = [models.UniqueConstraint(fields=["openapi_order", "status"],
                                               name="resellers_notify_one_per_status")]

    def __str__(self) -> str:
        return f"{self.openapi_order_id} → {self.status}"


class NotifyAttempt(models.Model):
    delivery = models.ForeignKey(NotifyDelivery, verbose_name="回调通知", on_delete=models.CASCADE,
                                 related_name="attempt_log")
    attempt_no = models.PositiveSmallIntegerField("第几次")
    started_at = models.DateTimeField("时间")
    duration_ms = models.PositiveIntegerField("耗时（毫秒）", default=0)
    status_code = models.PositiveSmallIntegerField("HTTP 状态", null=True, blank=True)
    response_excerpt = models.CharField("响应摘要", max_length=500, blank=True, default="")
    error = models.CharField("错误", max_length=300, blank=True, default="")

    class Meta:
        verbose_name = verbose_name_plural = "回调尝试"
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.attempt_no}"


class MarkupKind(models.TextChoices):
    PERCENT = "percent", "百分比"
    FIXED = "fixed", "固定金额"


class SubSite(models.Model):
    """A reseller's branded storefront (分站): at `/s/<slug>/`, `<slug>.<site domain>`, or a verified own domain."""

    reseller = models.OneToOneField(Reseller, verbose_name="代理商", on_delete=models.CASCADE, related_name="subsite")
    slug = models.SlugField("站点标识", max_length=30, unique=True)
    title = models.CharField("站点名称", max_length=60)
    logo = models.ImageField("标志图片", upload_to="subsites/", null=True, blank=True)
    notice = models.TextField("公告", blank=True, default="")
    markup_kind = models.CharField("默认加价方式", max_length=10, choices=MarkupKind.choices,
                                   default=MarkupKind.PERCENT)
    markup_value = models.DecimalField("默认加价", max_digits=12, decimal_places=2, default=Decimal("0.00"))
    is_enabled = models.BooleanField("开放访问", default=True)
    custom_domain = models.CharField("自定义域名", max_length=253, unique=True, null=True, blank=True)
    domain_token = models.CharField("域名验证码", max_length=64, blank=True, default="")
    domain_verified_at = models.DateTimeField("域名验证时间", null=True, blank=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "分站"
        ordering = ["-pk"]
        constraints = [models.CheckConstraint(condition=Q(markup_value__gte=0),
                                              name="resellers_subsite_markup_not_negative",
                                              violation_error_message="加价不能为负")]

    def __str__(self) -> str:
        return self.slug


class SubSitePrice(models.Model):
    """A sub-site's markup for one SKU, overriding its default."""

    subsite = models.ForeignKey(SubSite, verbose_name="分站", on_delete=models.CASCADE, related_name="prices")
    sku = models.ForeignKey("catalog.Sku", verbose_name="规格", on_delete=models.CASCADE, related_name="+")
    markup_kind = models.CharField("加价方式", max_length=10, choices=MarkupKind.choices)
    markup_value = models.DecimalField("加价", max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = verbose_name_plural = "分站规格加价"
        constraints = [
            models.UniqueConstraint(fields=["subsite", "sku"], name="resellers_subsiteprice_one_per_sku"),
            models.CheckConstraint(condition=Q(markup_value__gte=0), name="resellers_subsiteprice_not_negative",
                                   violation_error_message="加价不能为负"),
        ]

    def __str__(self) -> str:
        return f"{self.subsite_id} · {self.sku_id}"


class ReferralSource(models.TextChoices):
    LINK = "link", "邀请链接"
    REGISTRATION = "registration", "分站注册"
    STAFF = "staff", "后台指定"


class Referral(models.Model):
    """Who invited a user: the start of the commission chain (the inviter's inviter is the next level)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, verbose_name="被邀请用户", on_delete=models.CASCADE,
                                related_name="referral")
    inviter = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="邀请人", on_delete=models.PROTECT,
                                related_name="invitees")
    source = models.CharField("来源", max_length=20, choices=ReferralSource.choices)
    created_at = models.DateTimeField("时间", auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "邀请关系"
        ordering = ["-pk"]
        constraints = [models.CheckConstraint(condition=~Q(user=models.F("inviter")),
                                              name="resellers_referral_not_self",
                                              violation_error_message="不能邀请自己")]

    def __str__(self) -> str:
        return f"{self.inviter_id} → {self.user_id}"


class EarningKind(models.TextChoices):
    MARGIN = "margin", "分站利润"
    COMMISSION = "commission", "推广佣金"


class EarningState(models.TextChoices):
    PENDING = "pending", "待确认"
    AVAILABLE = "available", "可用"
    WITHDRAWN = "withdrawn", "已提现"
    REVERSED = "reversed", "已冲回"


class Earning(models.Model):
    """What one order earns one beneficiary: a sub-site's margin (level 0, credited to the wallet once confirmed)
    or a commission at a level of the invitation chain (1 = the buyer's inviter). Pending until `available_at`,
    reversed if the order is refunded first."""

    kind = models.CharField("类型", max_length=12, choices=EarningKind.choices)
    beneficiary = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="收益人", on_delete=models.PROTECT,
                                    related_name="earnings")
    order = models.ForeignKey("orders.Order", verbose_name="订单", on_delete=models.PROTECT, related_name="earnings")
    level = models.PositiveSmallIntegerField("层级", default=0)
    amount = models.DecimalField("金额", max_digits=14, decimal_places=2)
    reversed_amount = models.DecimalField("已冲回", max_digits=14, decimal_places=2, default=Decimal("0.00"))
    state = models.CharField("状态", max_length=10, choices=EarningState.choices, default=EarningState.PENDING,
                             db_index=True)
    available_at = models.DateTimeField("确认时间", db_index=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    settled_at = models.DateTimeField("结算时间", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "代理收益"
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "order", "level"], name="resellers_earning_one_per_level"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="resellers_earning_amount_positive",
                                   violation_error_message="收益金额必须大于 0"),
            models.CheckConstraint(condition=Q(reversed_amount__gte=0) & Q(reversed_amount__lte=models.F("amount")),
                                   name="resellers_earning_reversed_within_amount",
                                   violation_error_message="冲回金额不能超过收益金额"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.order_id} L{self.level}"


# --- Open API v1 nonces (kameng/resellers/nonces.py) ---------------------------------------------------------------


class ApiNonce(models.Model):
    """A nonce an Open API key used, kept long enough that a replay within the timestamp window is refused. Used
    when the cache is not shared by every web process (no Redis); purged by a beat task."""

    api_key = models.ForeignKey(ApiKey, verbose_name="API 密钥", on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField("随机串", max_length=64)
    created_at = models.DateTimeField("时间", db_index=True)

    class Meta:
        verbose_name = verbose_name_plural = "开放接口随机串"
        constraints = [models.UniqueConstraint(fields=["api_key", "nonce"], name="resellers_apinonce_unique")]

    def __str__(self) -> str:
        return self.nonce


# The earnings part's own models (invite codes, commission settings, commission withdrawals).
from kameng.resellers.earnings_models import (  # noqa: E402, F401
    CommissionSettings,
    InviteCode,
    ResellerWithdrawal,
    ResellerWithdrawalDestination,
    ResellerWithdrawalStatus,
)
