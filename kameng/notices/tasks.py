"""Periodic jobs of the buyer's e-mails. Tasks are idempotent: an e-mail already sent is never sent again."""

from __future__ import annotations

from celery import shared_task

from kameng.notices.listeners import delivered_emails_redrive


@shared_task(name="kameng.notices.tasks.redrive_delivery_emails")
def redrive_delivery_emails() -> int:
    return delivered_emails_redrive()
