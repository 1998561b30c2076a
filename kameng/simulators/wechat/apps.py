from django.apps import AppConfig


class WechatSimulatorConfig(AppConfig):
    name = "kameng.simulators.wechat"
    label = "sim_wechat"
    verbose_name = "模拟微信支付"
