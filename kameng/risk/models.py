"""Risk events: every suspicious thing the platform saw and refused (forged notifications, replays, …).

The rule engine, velocity limits and the review queue (capability J) build on this table later.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RiskSeverity(models.TextChoices):
    INFO = "info", "提示"
    WARNING = "warning", "警告"
    CRITICAL = "critical", "严重"


class RiskEvent(models.Model):
    kind = models.CharField("类型", max_length=40, db_index=True)
    severity = models.CharField("级别", max_length=10, choices=RiskSeverity.choices, default=RiskSeverity.WARNING)
    message = models.CharField("说明", max_length=300)
    detail = models.JSONField("详情（已脱敏）", default=dict, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="相关用户", null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    remote_addr = models.GenericIPAddressField("来源 IP", null=True, blank=True)
    created_at = models.DateTimeField("时间", auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "风险事件"
        verbose_name_plural = "风险事件"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"
