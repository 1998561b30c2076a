from django.apps import AppConfig


class UnionPaySimulatorConfig(AppConfig):
    name = "kameng.simulators.unionpay"
    label = "sim_unionpay"
    verbose_name = "模拟银联"
