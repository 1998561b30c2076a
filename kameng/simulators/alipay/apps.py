from django.apps import AppConfig


class AlipaySimulatorConfig(AppConfig):
    name = "kameng.simulators.alipay"
    label = "sim_alipay"
    verbose_name = "模拟支付宝"
