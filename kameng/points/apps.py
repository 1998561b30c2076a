from django.apps import AppConfig


class PointsConfig(AppConfig):
    name = "kameng.points"
    label = "points"
    verbose_name = "积分"
