import os

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "kameng.core"
    label = "core"
    verbose_name = "核心"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from kameng.core.db import inherited_pools_forget, thread_connection_close_at_exit

        os.register_at_fork(after_in_child=inherited_pools_forget)
        connection_created.connect(thread_connection_close_at_exit, dispatch_uid="kameng-close-at-thread-exit")
