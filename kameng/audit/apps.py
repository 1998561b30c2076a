from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "kameng.audit"
    label = "audit"
    verbose_name = "审计日志"

    def ready(self) -> None:
        # Every model admin registered by now (the admin's autodiscover ran in its own ready(), earlier) records
        # its saves, deletes and bulk actions: kameng/audit/admin_hooks.py.
        from django.contrib import admin

        from kameng.audit.admin_hooks import audit_admin_install

        audit_admin_install(admin.site)
