"""SupplierWithdrawal.account_name (户名, the bank account holder: often a person) encrypted at rest: a new encrypted
column filled from the plaintext one, which is then dropped. Reversible (the reverse writes the plaintext back)."""

from typing import Any

from django.db import migrations, models

import kameng.core.fields

CONTEXT = "suppliers.supplierwithdrawal.account_name"


def encrypt_account_names(apps: Any, schema_editor: Any) -> None:
    SupplierWithdrawal = apps.get_model("suppliers", "SupplierWithdrawal")
    for withdrawal in SupplierWithdrawal.objects.only("pk", "account_name").iterator():
        SupplierWithdrawal.objects.filter(pk=withdrawal.pk).update(account_name_encrypted=withdrawal.account_name)


def decrypt_account_names(apps: Any, schema_editor: Any) -> None:
    SupplierWithdrawal = apps.get_model("suppliers", "SupplierWithdrawal")
    for withdrawal in SupplierWithdrawal.objects.only("pk", "account_name_encrypted").iterator():
        SupplierWithdrawal.objects.filter(pk=withdrawal.pk).update(
            account_name=withdrawal.account_name_encrypted or "")


class Migration(migrations.Migration):
    dependencies = [("suppliers", "0008_notify_kameng_connector")]

    operations = [
        migrations.AddField(
            model_name="supplierwithdrawal", name="account_name_encrypted",
            field=kameng.core.fields.EncryptedTextField(null=True, context=CONTEXT, verbose_name="户名"),
        ),
        migrations.RunPython(encrypt_account_names, decrypt_account_names, elidable=False),
        # A default for the plaintext column only so that going back can add it again to a table with rows.
        migrations.AlterField(model_name="supplierwithdrawal", name="account_name",
                              field=models.CharField(default="", max_length=100, verbose_name="户名")),
        migrations.RemoveField(model_name="supplierwithdrawal", name="account_name"),
        migrations.RenameField(model_name="supplierwithdrawal", old_name="account_name_encrypted",
                               new_name="account_name"),
        migrations.AlterField(
            model_name="supplierwithdrawal", name="account_name",
            field=kameng.core.fields.EncryptedTextField(context=CONTEXT, verbose_name="户名"),
        ),
    ]
