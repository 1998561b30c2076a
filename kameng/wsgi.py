"""WSGI entry point (gunicorn kameng.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kameng.settings.base")
application = get_wsgi_application()
