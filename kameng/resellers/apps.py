from django.apps import AppConfig


class ResellersConfig(AppConfig):
    name = "kameng.resellers"
    label = "resellers"
    verbose_name = "代理分销"
