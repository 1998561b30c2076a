"""Direct top-up (直充) products for the buyer's tests: a phone top-up (China Mobile only) and a game top-up."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kameng.catalog.models import DeliveryKind, Sku
from tests.factories import SkuFactory

PHONE_FORM: list[dict[str, Any]] = [
    {"name": "phone", "label": "手机号", "kind": "phone", "required": True, "carriers": ["移动"]},
]
GAME_FORM: list[dict[str, Any]] = [
    {"name": "account", "label": "游戏账号", "kind": "text", "required": True, "max_length": 20,
     "pattern": "[A-Za-z0-9_]{4,20}", "pattern_message": "游戏账号为 4–20 位字母、数字或下划线"},
    {"name": "region", "label": "大区", "kind": "select", "required": True, "options": ["微信区", "QQ区"]},
    {"name": "role", "label": "角色名", "kind": "text", "required": False},
]


def phone_topup_sku(price: str = "49.50", form: list[dict[str, Any]] | None = None) -> Sku:
    return SkuFactory.create(product__delivery_kind=DeliveryKind.DIRECT_TOPUP, product__name="移动话费直充",
                             product__topup_form=PHONE_FORM if form is None else form, name="50 元",
                             price=Decimal(price))


def game_topup_sku(price: str = "30.00") -> Sku:
    return SkuFactory.create(product__delivery_kind=DeliveryKind.DIRECT_TOPUP, product__name="王者荣耀点券直充",
                             product__topup_form=GAME_FORM, name="300 点券", price=Decimal(price))
