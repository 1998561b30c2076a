"""Staff pages for resellers: each part registers its own pages in its own module, imported here."""

from kameng.resellers import admin_apikeys  # noqa: F401 - Open API keys and their orders
