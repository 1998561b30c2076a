from django.apps import AppConfig


class NoticesConfig(AppConfig):
    name = "kameng.notices"
    label = "notices"
    verbose_name = "通知"
