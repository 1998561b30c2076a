from django.apps import AppConfig


class SuppliersConfig(AppConfig):
    name = "kameng.suppliers"
    label = "suppliers"
    verbose_name = "供货商"
