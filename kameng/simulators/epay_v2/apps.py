from django.apps import AppConfig


class EpayV2SimulatorConfig(AppConfig):
    name = "kameng.simulators.epay_v2"
    label = "sim_epay_v2"
    verbose_name = "模拟易支付 V2"
