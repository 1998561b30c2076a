"""WSGI entry point (gunicorn kameng.wsgi): Django, with the suppliers' top-up callbacks answered ahead of its
middleware (kameng/suppliers/callback_wsgi.py says why and what is kept)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kameng.settings.base")
django_application = get_wsgi_application()

from kameng.suppliers.callback_wsgi import supplier_callbacks_first  # noqa: E402 - needs Django set up

application = supplier_callbacks_first(django_application)
