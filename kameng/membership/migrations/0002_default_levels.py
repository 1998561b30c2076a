"""The default levels VIP0…VIP5 (staff edit them in the admin): thresholds of cumulative spend and discount rates."""

from decimal import Decimal

from django.db import migrations

DEFAULT_LEVELS = [
    (0, "VIP0", "0", "1.000", "注册即享\n订单查询与售后服务"),
    (1, "VIP1", "100", "0.990", "全场 99 折"),
    (2, "VIP2", "500", "0.980", "全场 98 折\n专属会员价商品"),
    (3, "VIP3", "2000", "0.970", "全场 97 折\n专属会员价商品"),
    (4, "VIP4", "5000", "0.950", "全场 95 折\n专属会员价商品\n优先售后处理"),
    (5, "VIP5", "20000", "0.920", "全场 92 折\n专属会员价商品\n专属客服"),
]


def seed(apps, schema_editor):
    level_model = apps.get_model("membership", "MemberLevel")
    for rank, name, threshold, rate, benefits in DEFAULT_LEVELS:
        level_model.objects.get_or_create(rank=rank, defaults={
            "name": name, "threshold": Decimal(threshold), "discount_rate": Decimal(rate), "benefits": benefits})


def unseed(apps, schema_editor):
    apps.get_model("membership", "MemberLevel").objects.filter(rank__in=[row[0] for row in DEFAULT_LEVELS]).delete()


class Migration(migrations.Migration):
    dependencies = [("membership", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
