from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "kameng.ledger"
    label = "ledger"
    verbose_name = "账本"
