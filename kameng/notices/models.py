"""What the buyer is told by e-mail: the notices sent (one row per order and kind), and the language the buyer
reads them in."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OrderNoticeKind(models.TextChoices):
    DELIVERED = "delivered", "发货通知"


class OrderNoticeStatus(models.TextChoices):
    # Claimed before the mail server is called, so a second run does not send again; a send that raised gives the
    # claim back (the row is deleted) for the retry, a process that died while sending leaves it SENDING for good.
    SENDING = "sending", "发送中"
    SENT = "sent", "已发送"


class OrderNotice(models.Model):
    """One e-mail about one order: the unique constraint is what makes the delivery e-mail go out at most once."""

    order = models.ForeignKey("orders.Order", verbose_name="订单", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField("类型", max_length=20, choices=OrderNoticeKind.choices)
    status = models.CharField("状态", max_length=20, choices=OrderNoticeStatus.choices,
                              default=OrderNoticeStatus.SENDING)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    sent_at = models.DateTimeField("发送时间", null=True, blank=True)

    class Meta:
        verbose_name = "订单通知"
        verbose_name_plural = "订单通知"
        constraints = [
            models.UniqueConstraint(fields=["order", "kind"], name="notices_one_notice_per_order_and_kind",
                                    violation_error_message="该订单的这类通知已经发送过"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.kind}"


class NoticeLanguage(models.Model):
    """The language the buyer's e-mails are written in: the one they used when they confirmed their address."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, verbose_name="用户", on_delete=models.CASCADE,
                                primary_key=True, related_name="+")
    language = models.CharField("语言", max_length=10, choices=settings.LANGUAGES)

    class Meta:
        verbose_name = "通知语言"
        verbose_name_plural = "通知语言"

    def __str__(self) -> str:
        return f"{self.user_id} {self.language}"
