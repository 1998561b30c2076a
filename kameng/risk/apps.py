from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "kameng.risk"
    label = "risk"
    verbose_name = "风控"
