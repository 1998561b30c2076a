from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "kameng.payments"
    label = "payments"
    verbose_name = "支付"
