"""What the simulated supplier sells (its goods list) and the two demo merchants that buy from it.

Prices are the supplier's base purchase prices; each merchant pays them times its own `price_factor`, so the two
demo suppliers on the platform (one merchant each) compete on price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


class GoodsKind:
    MOBILE = "mobile"  # 话费: fulu.order.mobile.add by face value
    DIRECT = "direct"  # 直充: fulu.order.direct.add by product id
    CARD = "card"  # 卡密: fulu.order.card.add by product id


# Fulu's order_type in order answers: 1 话费, 2 流量, 3 卡密, 4 直充.
ORDER_TYPES = {GoodsKind.MOBILE: 1, GoodsKind.CARD: 3, GoodsKind.DIRECT: 4}
PRODUCT_TYPES = {GoodsKind.MOBILE: "话费", GoodsKind.CARD: "卡密", GoodsKind.DIRECT: "直充"}


@dataclass(frozen=True)
class Goods:
    product_id: str
    name: str
    kind: str
    face_value: Decimal
    price: Decimal  # base purchase price per unit
    stock: int | None = None  # None: unlimited


GOODS = (
    Goods("10030", "全国三网话费 30 元（快充）", GoodsKind.MOBILE, Decimal("30"), Decimal("29.40")),
    Goods("10050", "全国三网话费 50 元（快充）", GoodsKind.MOBILE, Decimal("50"), Decimal("49.00")),
    Goods("10100", "全国三网话费 100 元（快充）", GoodsKind.MOBILE, Decimal("100"), Decimal("98.00")),
    Goods("20060", "星海传说 60 钻石（直充）", GoodsKind.DIRECT, Decimal("6"), Decimal("5.70")),
    Goods("20300", "星海传说 300 钻石（直充）", GoodsKind.DIRECT, Decimal("30"), Decimal("28.50")),
    Goods("20680", "星海传说 680 钻石（直充）", GoodsKind.DIRECT, Decimal("68"), Decimal("64.60")),
    Goods("30001", "影音会员月卡（卡密）", GoodsKind.CARD, Decimal("20"), Decimal("17.50")),
)


@dataclass(frozen=True)
class DemoMerchant:
    app_key: str
    name: str
    price_factor: Decimal


# The demo's two suppliers: 星河数卡 a little cheaper on 话费, 云充科技 cheaper on the game (see `price_for`).
DEMO_MERCHANTS = (
    DemoMerchant("demo-xinghe", "星河数卡", Decimal("1.000")),
    DemoMerchant("demo-yunchong", "云充科技", Decimal("1.010")),
)
# Per-merchant exceptions to the factor, so each demo supplier wins some SKUs.
DEMO_PRICE_OVERRIDES = {
    ("demo-yunchong", "20060"): Decimal("5.60"),
    ("demo-yunchong", "20300"): Decimal("28.20"),
    ("demo-yunchong", "20680"): Decimal("63.90"),
}


def price_for(goods: Goods, *, price_factor: Decimal, override: Decimal | None = None) -> Decimal:
    if override is not None:
        return override
    return (goods.price * price_factor).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def goods_by_id() -> dict[str, Goods]:
    return {goods.product_id: goods for goods in GOODS}
