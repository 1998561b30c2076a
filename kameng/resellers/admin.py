"""Staff pages for resellers: each part registers its own pages in its own module, imported here."""
from kameng.resellers import (
    admin_apikeys,  # noqa: F401 - Open API keys and their orders
    admin_earnings,  # noqa: F401
    admin_notify,  # noqa: F401
    admin_subsites,  # noqa: F401
    admin_tiers,  # noqa: F401
)
