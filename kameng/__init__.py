"""kameng — an open-source 卡盟 platform."""

from kameng.celery import app as celery_app

__all__ = ["celery_app"]
