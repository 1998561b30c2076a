"""Periodic upkeep of resellers: old Open API nonce rows go (kameng.resellers.nonces)."""

from __future__ import annotations

from celery import shared_task

from kameng.resellers.nonces import nonces_purge


@shared_task(name="kameng.resellers.tasks.purge_openapi_nonces")
def purge_openapi_nonces() -> int:
    return nonces_purge()
