"""成长型会员 (membership levels by spend): the levels staff set, member prices, each buyer's cumulative spend and
the record of what every order added to it."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

LEVEL_RANK_MAX = 5
RATE_MIN = Decimal("0.01")
RATE_MAX = Decimal("1")


class MemberLevel(models.Model):
    """VIP0…VIP5: a buyer is at the highest level whose threshold their cumulative spend reaches (spend equal to
    the threshold is enough). VIP0's threshold is 0: every buyer is at least VIP0."""

    rank = models.PositiveSmallIntegerField("等级", unique=True, validators=[MaxValueValidator(LEVEL_RANK_MAX)])
    name = models.CharField("名称", max_length=20, help_text="例如：VIP4")
    threshold = models.DecimalField("累计消费门槛", max_digits=14, decimal_places=2,
                                    validators=[MinValueValidator(Decimal("0"))],
                                    help_text="累计已完成消费（元）达到此金额即升到该等级")
    discount_rate = models.DecimalField("折扣率", max_digits=4, decimal_places=3,
                                        validators=[MinValueValidator(RATE_MIN), MaxValueValidator(RATE_MAX)],
                                        help_text="0.95 即 95 折；1 表示无折扣")
    benefits = models.TextField("等级权益", blank=True, help_text="显示在会员中心，每行一条")

    class Meta:
        verbose_name = "会员等级"
        verbose_name_plural = "会员等级"
        ordering = ["rank"]
        constraints = [
            models.CheckConstraint(condition=Q(rank__lte=LEVEL_RANK_MAX), name="membership_level_rank_range",
                                   violation_error_message="等级必须在 0 到 5 之间"),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="membership_level_threshold_positive",
                                   violation_error_message="累计消费门槛不能小于 0"),
            models.CheckConstraint(condition=Q(rank__gt=0) | Q(threshold=0), name="membership_level_zero_is_free",
                                   violation_error_message="VIP0 的累计消费门槛必须为 0：每位买家至少是 VIP0"),
            models.CheckConstraint(condition=Q(discount_rate__gte=RATE_MIN) & Q(discount_rate__lte=RATE_MAX),
                                   name="membership_level_rate_range",
                                   violation_error_message="折扣率必须在 0.01 到 1 之间（0.95 即 95 折）"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Thresholds rise with the rank: a higher level needs more spend than every level below it."""
        super().clean()
        if self.rank is None or self.threshold is None:
            return
        others = MemberLevel.objects.exclude(pk=self.pk)
        below = others.filter(rank__lt=self.rank, threshold__gte=self.threshold).order_by("-rank").first()
        if below is not None:
            raise ValidationError({"threshold": f"累计消费门槛必须高于 {below.name} 的门槛（¥{below.threshold}）"})
        above = others.filter(rank__gt=self.rank, threshold__lte=self.threshold).order_by("rank").first()
        if above is not None:
            raise ValidationError({"threshold": f"累计消费门槛必须低于 {above.name} 的门槛（¥{above.threshold}）"})


class MemberPrice(models.Model):
    """A member price for one level on one SKU or on every SKU of one category: a fixed price or a rate.

    It applies to its level and to the levels above that have no row of their own for the same SKU (or category);
    a SKU's row beats a category's, which beats the level's discount rate (kameng.membership.pricing).
    """

    level = models.ForeignKey(MemberLevel, verbose_name="会员等级", on_delete=models.CASCADE,
                              related_name="prices")
    sku = models.ForeignKey("catalog.Sku", verbose_name="规格", on_delete=models.CASCADE, null=True, blank=True,
                            related_name="member_prices")
    category = models.ForeignKey("catalog.Category", verbose_name="分类", on_delete=models.CASCADE, null=True,
                                 blank=True, related_name="member_prices")
    price = models.DecimalField("会员价", max_digits=12, decimal_places=2, null=True, blank=True,
                                validators=[MinValueValidator(Decimal("0.01"))],
                                help_text="固定会员价（元），仅用于指定规格；不会高于零售价，也不会低于最低售价")
    discount_rate = models.DecimalField("折扣率", max_digits=4, decimal_places=3, null=True, blank=True,
                                        validators=[MinValueValidator(RATE_MIN), MaxValueValidator(RATE_MAX)],
                                        help_text="0.9 即 9 折；与「会员价」二选一")

    class Meta:
        verbose_name = "会员价"
        verbose_name_plural = "会员价"
        ordering = ["level__rank", "id"]
        # "Exactly one of" is spelled out rather than written as XOR: MariaDB's XOR of two IS NULL tests let a row
        # with neither through Django's validation.
        constraints = [
            models.CheckConstraint(condition=(Q(sku__isnull=False) & Q(category__isnull=True))
                                   | (Q(sku__isnull=True) & Q(category__isnull=False)),
                                   name="membership_price_one_target",
                                   violation_error_message="请在「规格」和「分类」中选择且只选择一个"),
            models.CheckConstraint(condition=(Q(price__isnull=False) & Q(discount_rate__isnull=True))
                                   | (Q(price__isnull=True) & Q(discount_rate__isnull=False)),
                                   name="membership_price_one_kind",
                                   violation_error_message="请填写「会员价」或「折扣率」中的一个"),
            models.CheckConstraint(condition=Q(category__isnull=True) | Q(price__isnull=True),
                                   name="membership_price_category_rate_only",
                                   violation_error_message="分类会员价只能设折扣率：同一分类下各规格的零售价不同"),
            models.CheckConstraint(condition=Q(price__isnull=True) | Q(price__gt=0),
                                   name="membership_price_positive", violation_error_message="会员价必须大于 0"),
            models.CheckConstraint(
                condition=Q(discount_rate__isnull=True) | (Q(discount_rate__gte=RATE_MIN)
                                                           & Q(discount_rate__lte=RATE_MAX)),
                name="membership_price_rate_range",
                violation_error_message="折扣率必须在 0.01 到 1 之间（0.9 即 9 折）"),
            models.UniqueConstraint(fields=["level", "sku"], name="membership_price_unique_sku",
                                    violation_error_message="该等级已为此规格设置了会员价"),
            models.UniqueConstraint(fields=["level", "category"], name="membership_price_unique_category",
                                    violation_error_message="该等级已为此分类设置了会员价"),
        ]

    def __str__(self) -> str:
        target = self.sku if self.sku_id is not None else self.category
        return f"{self.level} · {target}"

    def clean(self) -> None:
        """A fixed member price lies between the SKU's floor price and its retail price."""
        super().clean()
        sku = self.sku
        if self.price is None or sku is None:
            return
        if self.price > sku.price:
            raise ValidationError({"price": f"会员价不能高于零售价 ¥{sku.price}"})
        if sku.floor_price is not None and self.price < sku.floor_price:
            raise ValidationError({"price": f"会员价不能低于该规格的最低售价 ¥{sku.floor_price}"})


class Membership(models.Model):
    """A buyer's cumulative completed spend and the level it gives (created with the first counted order)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, verbose_name="买家", on_delete=models.CASCADE,
                                primary_key=True, related_name="membership")
    spend = models.DecimalField("累计消费", max_digits=14, decimal_places=2, default=Decimal("0.00"))
    level_rank = models.PositiveSmallIntegerField("当前等级", default=0)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "会员"
        verbose_name_plural = "会员"
        constraints = [models.CheckConstraint(condition=Q(spend__gte=0), name="membership_spend_not_negative",
                                              violation_error_message="累计消费不能小于 0")]

    def __str__(self) -> str:
        return f"{self.user} · VIP{self.level_rank}"


class CountedOrder(models.Model):
    """What one order adds to its buyer's spend now: total − refunded while the buyer keeps the goods, 0 otherwise.
    The listener brings this row in line with the order and moves the spend by the difference, so running it twice
    counts the order once."""

    # No foreign-key constraints in the database (db_constraint=False): the rows are written from the orders
    # themselves in the same statement, and each constraint would make PostgreSQL lock the order and the buyer's
    # user row again (FOR KEY SHARE, a multixact beside the checkout's own) for every order counted. Orders are not
    # deleted, and a buyer with orders cannot be (Order.buyer is PROTECT), so nothing is left dangling.
    order = models.OneToOneField("orders.Order", verbose_name="订单", on_delete=models.DO_NOTHING, primary_key=True,
                                 related_name="+", db_constraint=False)
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="买家", on_delete=models.DO_NOTHING,
                              related_name="+", db_constraint=False)
    amount = models.DecimalField("计入金额", max_digits=14, decimal_places=2)
    # What `amount` was before its last change: the PostgreSQL listener's upsert returns amount − previous as the
    # change it made to the spend (kameng.membership.services).
    previous_amount = models.DecimalField("上次计入金额", max_digits=14, decimal_places=2, default=Decimal("0.00"))
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "计入消费的订单"
        verbose_name_plural = "计入消费的订单"

    def __str__(self) -> str:
        return f"{self.order_id}: {self.amount}"
