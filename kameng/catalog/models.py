"""The catalogue: categories, products and their SKUs (face values with prices)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q


def new_category_slug() -> str:
    """A slug for a category saved without one. Chinese names slugify to nothing and transliteration would need a
    pinyin dictionary (and still collide on homophones), so it is a short random id: c-3f9a1b2c."""
    return f"c-{secrets.token_hex(4)}"


class Category(models.Model):
    name = models.CharField("名称", max_length=60)
    slug = models.SlugField("标识", max_length=60, unique=True, blank=True,
                            help_text="店铺网址里的分类标识（?category=标识），只能用英文字母、数字、连字符和下划线；"
                                      "留空则自动生成，如 c-3f9a1b2c")
    parent = models.ForeignKey("self", verbose_name="上级分类", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="children")
    sort_order = models.IntegerField("排序", default=0, help_text="数字小的排在前面")
    is_active = models.BooleanField("显示", default=True)

    class Meta:
        verbose_name = "分类"
        verbose_name_plural = "分类"
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.slug:
            self.slug = new_category_slug()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        ancestor, seen = self.parent, set()
        while ancestor is not None and ancestor.pk not in seen:
            if self.pk is not None and ancestor.pk == self.pk:
                raise ValidationError({"parent": "上级分类不能是它自己或它的下级分类：请选择其他上级分类，或留空"})
            seen.add(ancestor.pk)
            ancestor = ancestor.parent


class DeliveryKind(models.TextChoices):
    CARD_KEY = "card_key", "卡密（自动发货）"
    DIRECT_TOPUP = "direct_topup", "直充"
    MANUAL = "manual", "人工发货"


class ProductStatus(models.TextChoices):
    ON_SALE = "on_sale", "在售"
    OFF_SHELF = "off_shelf", "已下架"


def validate_no_banned_keyword(value: str) -> None:
    for word in getattr(settings, "KAMENG_BANNED_KEYWORDS", []):
        if word and word in value:
            raise ValidationError(f"名称包含违禁词「{word}」，支付通道会拒绝此类商品")


class Product(models.Model):
    category = models.ForeignKey(Category, verbose_name="分类", on_delete=models.PROTECT, related_name="products")
    name = models.CharField("商品名称", max_length=120, validators=[validate_no_banned_keyword])
    description = models.TextField("商品说明", blank=True)
    delivery_kind = models.CharField("发货方式", max_length=20, choices=DeliveryKind.choices,
                                     default=DeliveryKind.CARD_KEY)
    status = models.CharField("状态", max_length=12, choices=ProductStatus.choices, default=ProductStatus.ON_SALE)
    min_quantity = models.PositiveIntegerField("单笔最少购买", default=1, validators=[MinValueValidator(1)])
    max_quantity = models.PositiveIntegerField("单笔最多购买", default=100, validators=[MinValueValidator(1)])
    low_stock_threshold = models.PositiveIntegerField("低库存提醒阈值", default=10)
    sort_order = models.IntegerField("排序", default=0)
    # Direct top-up (直充) products: what the buyer fills in, a list of fields ({"name", "label", "kind": phone |
    # text | select, "required", "options"}); empty for other kinds.
    topup_form = models.JSONField("充值表单", default=list, blank=True)
    # Both made by kameng.catalog.services.product_picture_set from the staff's upload (re-encoded as WebP), never
    # the uploaded file itself; empty: the storefront shows a placeholder.
    picture = models.ImageField("商品图片", upload_to="products/", max_length=200, blank=True, editable=False)
    thumbnail = models.ImageField("缩略图", upload_to="products/", max_length=200, blank=True, editable=False)
    # 游戏类商品: minors' payment limits apply (kameng.risk, the order checkpoint; kameng.catalog.selectors
    # .is_game_goods_sku reads it through a cached set).
    is_game_goods = models.BooleanField("游戏类商品", default=False, db_default=False,
                                        help_text="勾选后适用未成年人消费限制：未实名用户须先实名，"
                                                  "未满 8 周岁不能购买，8–18 周岁有单笔与每月限额")
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "商品"
        verbose_name_plural = "商品"
        ordering = ["sort_order", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(max_quantity__gte=F("min_quantity")),
                                   name="catalog_product_quantity_range",
                                   violation_error_message="「单笔最多购买」不能小于「单笔最少购买」：请调大最多购买数量，"
                                                           "或调小最少购买数量"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        # The flag may have changed: forget what kameng.catalog.selectors.is_game_goods_sku cached for its SKUs (in
        # the shared cache, and in this process at once; other processes hold theirs GAME_GOODS_HELD_SECONDS at most).
        sku_ids = list(self.skus.values_list("pk", flat=True))
        cache.delete_many([game_goods_cache_key(sku_id) for sku_id in sku_ids])
        game_goods_held_forget(sku_ids)
        skus_for_sale_held_forget(sku_ids)

    @property
    def is_on_sale(self) -> bool:
        return self.status == ProductStatus.ON_SALE


def game_goods_cache_key(sku_id: int) -> str:
    return f"catalog:game-goods:{sku_id}"


# Per process: SKU id → (is game goods, when read), kameng.catalog.selectors.is_game_goods_sku's front.
game_goods_held: dict[int, tuple[bool, float]] = {}


def game_goods_held_forget(sku_ids: Iterable[int] | None = None) -> None:
    if sku_ids is None:
        game_goods_held.clear()
    for sku_id in sku_ids or ():
        game_goods_held.pop(sku_id, None)


# Per process: SKU id → (its `kameng.catalog.selectors.SkuForSale`, None when not on sale; when read), the memory of
# kameng.catalog.selectors.skus_for_sale_recent.
skus_for_sale_held: dict[int, tuple[Any, float]] = {}


def skus_for_sale_held_forget(sku_ids: Iterable[int] | None = None) -> None:
    if sku_ids is None:
        skus_for_sale_held.clear()
    for sku_id in sku_ids or ():
        skus_for_sale_held.pop(sku_id, None)


class Sku(models.Model):
    """A face value (面值) of a product with its retail price. Card keys are stocked per SKU."""

    product = models.ForeignKey(Product, verbose_name="商品", on_delete=models.PROTECT, related_name="skus")
    name = models.CharField("规格名称", max_length=60, help_text="例如：100 元")
    face_value = models.DecimalField("面值", max_digits=12, decimal_places=2, null=True, blank=True,
                                     validators=[MinValueValidator(Decimal("0.01"), message="面值必须大于 0，或留空")])
    price = models.DecimalField("零售价", max_digits=12, decimal_places=2,
                                validators=[MinValueValidator(Decimal("0.01"))])
    # 最低售价: no price rule (member price, discount) takes the unit price below it (kameng.catalog.pricing).
    floor_price = models.DecimalField("最低售价", max_digits=12, decimal_places=2, null=True, blank=True,
                                      validators=[MinValueValidator(Decimal("0.01"),
                                                                    message="最低售价必须大于 0，或留空")],
                                      help_text="会员价等优惠不会低于此价；留空表示不限")
    is_active = models.BooleanField("启用", default=True)
    sort_order = models.IntegerField("排序", default=0)

    class Meta:
        verbose_name = "规格"
        verbose_name_plural = "规格"
        ordering = ["sort_order", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="catalog_sku_price_positive",
                                   violation_error_message="零售价必须大于 0：请填写售价（元）"),
            models.CheckConstraint(
                condition=Q(floor_price__isnull=True) | (Q(floor_price__gt=0) & Q(floor_price__lte=F("price"))),
                name="catalog_sku_floor_within_price",
                violation_error_message="最低售价必须大于 0 且不高于零售价：请调低最低售价，或留空"),
        ]

    def __str__(self) -> str:
        return f"{self.product.name} · {self.name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        skus_for_sale_held_forget([self.pk])  # its price or state may have changed: read it again (this process)
