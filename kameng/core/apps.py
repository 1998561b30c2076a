import os

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "kameng.core"
    label = "core"
    verbose_name = "核心"

    def ready(self) -> None:
        from kameng.core.db import inherited_pools_forget

        os.register_at_fork(after_in_child=inherited_pools_forget)
