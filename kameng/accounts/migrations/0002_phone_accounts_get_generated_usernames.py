"""Accounts registered by phone used the number as their username, in plain text beside its ciphertext.

Each such account gets a generated username (the same form `user_register` now gives); the number stays only
encrypted, and logging in by phone goes through its blind index as before.
"""

from __future__ import annotations

import secrets

from django.db import migrations


def rename_phone_usernames(apps, schema_editor):  # type: ignore[no-untyped-def]
    User = apps.get_model("accounts", "User")
    for user in User.objects.filter(phone_index__isnull=False).only("pk", "username").iterator():
        if user.username.isdigit():
            User.objects.filter(pk=user.pk).update(username=f"m-{secrets.token_hex(6)}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(rename_phone_usernames, migrations.RunPython.noop)]
