from django.apps import AppConfig


class AfterSalesConfig(AppConfig):
    name = "kameng.after_sales"
    label = "after_sales"
    verbose_name = "售后"
