"""Move every staff authenticator from django-otp's TOTPDevice (key in plain hex) to StaffTOTPDevice (key encrypted,
kameng/accounts/staff_models.py), then delete the plain rows. Sessions verified with an old device are asked for a
code once more (their device id named the old model). Going back moves them back, in clear."""

from typing import Any

from django.db import migrations

COPIED = ("user_id", "name", "confirmed", "throttling_failure_timestamp", "throttling_failure_count", "last_used_at",
          "key", "step", "t0", "digits", "tolerance", "drift", "last_t")


def _move(source: Any, target: Any) -> None:
    for row in source.objects.order_by("pk"):
        moved = target.objects.create(**{name: getattr(row, name) for name in COPIED})
        # created_at is auto_now_add: set afterwards so the enrolment date is kept.
        target.objects.filter(pk=moved.pk).update(created_at=row.created_at)
    source.objects.all().delete()


def keys_encrypt(apps: Any, schema_editor: Any) -> None:
    _move(apps.get_model("otp_totp", "TOTPDevice"), apps.get_model("accounts", "StaffTOTPDevice"))


def keys_decrypt(apps: Any, schema_editor: Any) -> None:
    _move(apps.get_model("accounts", "StaffTOTPDevice"), apps.get_model("otp_totp", "TOTPDevice"))


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0006_staff_totp_device_encrypted"),
        ("otp_totp", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(keys_encrypt, keys_decrypt)]
