"""AuditEntry: one staff action, written once and never changed.

Append-only twice over: the admin offers no add, change or delete, and on PostgreSQL a trigger refuses UPDATE and
DELETE on the table (migration 0002). On SQLite and MySQL/MariaDB only the application keeps it so (no code path
updates or deletes a row); a deployment that needs the guarantee there revokes UPDATE/DELETE from the app's user.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    created_at = models.DateTimeField("时间", default=timezone.now, db_index=True)
    # No database constraint and no cascade: the entry outlives the account (deleting a user must not touch it).
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name="操作人", null=True, blank=True,
                              on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    actor_username = models.CharField("操作人账号", max_length=150, blank=True)
    action = models.CharField("操作", max_length=100, db_index=True)
    object_type = models.CharField("对象类型", max_length=100, blank=True, db_index=True)  # "app_label.model"
    object_id = models.CharField("对象 ID", max_length=64, blank=True)
    object_repr = models.CharField("对象", max_length=200, blank=True)
    before = models.JSONField("修改前", null=True, blank=True)
    after = models.JSONField("修改后", null=True, blank=True)
    message = models.CharField("说明", max_length=500, blank=True)
    ip_address = models.GenericIPAddressField("IP 地址", null=True, blank=True)
    user_agent = models.CharField("浏览器标识（User-Agent）", max_length=300, blank=True)

    class Meta:
        verbose_name = "审计日志"
        verbose_name_plural = "审计日志"
        ordering = ("-id",)
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["actor", "created_at"], name="audit_actor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_username or '系统'} {self.action} {self.object_repr}".strip()
