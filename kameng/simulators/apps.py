from django.apps import AppConfig


class SimulatorsConfig(AppConfig):
    name = "kameng.simulators"
    label = "simulators"
    verbose_name = "模拟网关"
