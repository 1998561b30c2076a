"""Periodic upkeep of accounts: old SMS code rows go."""

from __future__ import annotations

from celery import shared_task

from kameng.accounts.phone_login import phone_codes_purge


@shared_task(name="kameng.accounts.tasks.purge_phone_codes")
def purge_phone_codes() -> int:
    return phone_codes_purge()
