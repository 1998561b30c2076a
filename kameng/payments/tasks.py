"""Periodic recovery of lost payment notifications."""

from __future__ import annotations

from celery import shared_task

from kameng.payments.reconciliation import payments_reconcile_pending


@shared_task(name="kameng.payments.tasks.redrive_pending_payments")
def redrive_pending_payments() -> int:
    return payments_reconcile_pending()


@shared_task(name="kameng.payments.tasks.redrive_pending_refunds")
def redrive_pending_refunds() -> int:
    from kameng.payments.refunds import refunds_redrive_pending

    return refunds_redrive_pending()


@shared_task(name="kameng.payments.tasks.purge_aml_identities")
def purge_aml_identities() -> int:
    """Clear the identity kept with AML reviews past the retention period (KAMENG_AML_RETENTION_DAYS / policy)."""
    from kameng.payments.aml import aml_identities_purge

    return aml_identities_purge()
