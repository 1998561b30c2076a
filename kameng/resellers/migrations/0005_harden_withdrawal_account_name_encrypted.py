"""ResellerWithdrawal.account_name (户名, the bank account holder: a person) encrypted at rest: a new encrypted
column filled from the plaintext one, which is then dropped. Reversible (the reverse writes the plaintext back)."""

from typing import Any

from django.db import migrations

import kameng.core.fields

CONTEXT = "resellers.resellerwithdrawal.account_name"


def encrypt_account_names(apps: Any, schema_editor: Any) -> None:
    ResellerWithdrawal = apps.get_model("resellers", "ResellerWithdrawal")
    for withdrawal in ResellerWithdrawal.objects.only("pk", "account_name").iterator():
        ResellerWithdrawal.objects.filter(pk=withdrawal.pk).update(account_name_encrypted=withdrawal.account_name)


def decrypt_account_names(apps: Any, schema_editor: Any) -> None:
    ResellerWithdrawal = apps.get_model("resellers", "ResellerWithdrawal")
    for withdrawal in ResellerWithdrawal.objects.only("pk", "account_name_encrypted").iterator():
        ResellerWithdrawal.objects.filter(pk=withdrawal.pk).update(
            account_name=withdrawal.account_name_encrypted or "")


class Migration(migrations.Migration):
    dependencies = [("resellers", "0004_scan_reseller_contact_encrypted")]

    operations = [
        migrations.AddField(
            model_name="resellerwithdrawal", name="account_name_encrypted",
            field=kameng.core.fields.EncryptedTextField(blank=True, null=True, context=CONTEXT, verbose_name="户名"),
        ),
        migrations.RunPython(encrypt_account_names, decrypt_account_names, elidable=False),
        migrations.RemoveField(model_name="resellerwithdrawal", name="account_name"),
        migrations.RenameField(model_name="resellerwithdrawal", old_name="account_name_encrypted",
                               new_name="account_name"),
        migrations.AlterField(
            model_name="resellerwithdrawal", name="account_name",
            field=kameng.core.fields.EncryptedTextField(blank=True, default="", context=CONTEXT, verbose_name="户名"),
        ),
    ]
