"""The Celery application: broker from settings (filesystem queue by default, Redis or RabbitMQ in production)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import setup_logging, task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kameng.settings.base")

app = Celery("kameng")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def use_the_projects_logging(**_kwargs: object) -> None:
    """Celery replaces the root logger's handlers with its own unless this signal has a receiver: the worker and
    beat would then log without the filter that masks secrets (a gateway query URL carries the merchant key).
    Django's LOGGING, the one the web processes use, applies to them too."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@task_prerun.connect
@task_postrun.connect
def database_connections_recycle(sender: Any = None, **_kwargs: object) -> None:
    """Before and after each task run by a worker, close this thread's database connections that are broken or past
    CONN_MAX_AGE, as Django does around each request, and keep the others. Celery's Django fixup closes them
    outright around every task unless CELERY_DB_REUSE_MAX is set (settings): each task then opened a new PostgreSQL
    connection — a backend started, its caches and prepared statements cold (measured in bench/README.md). Eager
    tasks (tests, the demo without a worker) run inside their caller's transaction: their connection is left alone,
    as the fixup leaves it."""
    if sender is None or getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


# Built here and handed to Celery once at the end: reading app.conf at import time would load Django's settings
# before `python -m kameng.demo` has written its .env.
beat_schedule = {
    "orders-expire-unpaid": {"task": "kameng.orders.tasks.expire_unpaid_orders", "schedule": 30.0},
    "orders-redrive-stuck": {"task": "kameng.orders.tasks.redrive_stuck_orders", "schedule": 60.0},
    "inventory-redrive-imports": {"task": "kameng.inventory.tasks.redrive_queued_imports", "schedule": 120.0},
    "payments-redrive-refunds": {"task": "kameng.payments.tasks.redrive_pending_refunds", "schedule": 120.0},
    "payments-redrive-notifications": {"task": "kameng.payments.tasks.redrive_pending_payments", "schedule": 60.0},
    "notices-redrive-delivery-emails": {"task": "kameng.notices.tasks.redrive_delivery_emails", "schedule": 300.0},
    # Does nothing unless KAMENG_POINTS_EXPIRY_DAYS is set.
    "points-expire": {"task": "kameng.points.tasks.expire_points", "schedule": 3600.0},
    "suppliers-settle-missed": {"task": "kameng.suppliers.tasks.settle_missed_orders", "schedule": 600.0},
    # Direct top-ups: re-drive attempts whose dispatch was lost, query the ones due (kameng.suppliers.topup).
    "suppliers-sweep-topups": {"task": "kameng.suppliers.tasks.sweep_topups", "schedule": 10.0},
    "accounts-purge-phone-codes": {"task": "kameng.accounts.tasks.purge_phone_codes", "schedule": 3600.0},
    # Suppliers' prices and stock from their upstreams (one task per supplier), low stock, restock webhooks.
    "suppliers-sync": {"task": "kameng.suppliers.tasks.sync_all_suppliers", "schedule": 300.0},
    "suppliers-check-restock": {"task": "kameng.suppliers.tasks.check_restock", "schedule": 600.0},
    "suppliers-redrive-restock-webhooks": {"task": "kameng.suppliers.tasks.redrive_restock_webhooks",
                                           "schedule": 60.0},
    # Supplier star ratings, once a day after midnight (CELERY_TIMEZONE): kameng/suppliers/ratings.py.
    "suppliers-recompute-ratings": {"task": "kameng.suppliers.tasks.recompute_ratings",
                                    "schedule": crontab(hour=0, minute=20)},
    # Open API nonces kept in the database (no Redis): rows past the window go (kameng/resellers/nonces.py).
    "resellers-purge-openapi-nonces": {"task": "kameng.resellers.tasks.purge_openapi_nonces", "schedule": 600.0},
    # Open API keys' uses noted in Redis by the verifier, written to the keys' rows (kameng/resellers/apikeys.py).
    "resellers-flush-api-key-uses": {"task": "kameng.resellers.tasks.flush_api_key_uses", "schedule": 60.0},
    "payments-aml-purge-identities": {"task": "kameng.payments.tasks.purge_aml_identities", "schedule": 86400.0},
}
# Open API order notifications to resellers' notify_url: retries and lost sends (kameng.resellers.notify).
beat_schedule["resellers-sweep-notifications"] = {"task": "kameng.resellers.tasks.sweep_notifications",
                                                   "schedule": 15.0}

# Reseller earnings (kameng/resellers/earnings.py): confirm the due margins and commissions; sync missed orders.
app.autodiscover_tasks(["kameng.resellers"], related_name="earnings_tasks")
beat_schedule["resellers-release-earnings"] = {
    "task": "kameng.resellers.earnings_tasks.release_due_earnings", "schedule": 300.0}
beat_schedule["resellers-sync-missed-earnings"] = {
    "task": "kameng.resellers.earnings_tasks.sync_missed_earnings", "schedule": 3600.0}
app.conf.beat_schedule = beat_schedule
