from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "kameng.catalog"
    label = "catalog"
    verbose_name = "商品"
