"""What every simulated gateway's trade keeps about the notifications it sends the merchant.

Abstract: each simulator keeps its own table, these columns are simply written once.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F
from django.utils import timezone


class NotifiedTrade(models.Model):
    notify_attempts = models.PositiveIntegerField("通知次数", default=0)
    last_notify_response = models.TextField("最近一次通知回复", blank=True)
    last_notify_at = models.DateTimeField("最近通知时间", null=True, blank=True)
    notified_at = models.DateTimeField("商户确认时间", null=True, blank=True,
                                       help_text="商户回复 success 的时间；为空表示仍需重试")

    class Meta:
        abstract = True

    def notify_attempt_record(self, *, response: str, is_delivered: bool) -> int:
        """Count one attempt and its reply in the database (not on this instance); return the new count.

        The count is incremented in SQL so two deliveries of the same task cannot both read the old value.
        """
        now = timezone.now()
        changes: dict[str, object] = {"notify_attempts": F("notify_attempts") + 1, "last_notify_response": response,
                                      "last_notify_at": now}
        if is_delivered:
            changes["notified_at"] = now
        trades = type(self)._default_manager.filter(pk=self.pk)
        trades.update(**changes)
        return int(trades.values_list("notify_attempts", flat=True).get())
