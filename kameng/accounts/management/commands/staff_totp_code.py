"""Print the current 2FA code of a staff account whose authenticator key is known to the server — meant for the
demo's admin (seeded with a fixed key) and for development; on a real site staff read the code on their phone."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kameng.accounts.staff_models import StaffTOTPDevice
from kameng.accounts.staff_otp import totp_code_now, totp_secret_base32


class Command(BaseCommand):
    help = "Print the current TOTP code (and the base32 secret) of a staff account: the demo admin's by default."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", nargs="?", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        device = (StaffTOTPDevice.objects.filter(user__username=options["username"], confirmed=True)
                  .order_by("id").first())
        if device is None:
            raise CommandError(f"{options['username']} 没有已绑定的身份验证器（no confirmed authenticator）")
        self.stdout.write(f"{totp_code_now(device.key)}  (secret {totp_secret_base32(device)}, changes every 30 s)")
