from django.apps import AppConfig


class MembershipConfig(AppConfig):
    name = "kameng.membership"
    label = "membership"
    verbose_name = "会员"
