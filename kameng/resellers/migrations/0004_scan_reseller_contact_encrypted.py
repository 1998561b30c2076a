"""Reseller.contact (a phone number, QQ or WeChat id) encrypted at rest: a new encrypted column filled from the
plaintext one, which is then dropped. Reversible (the reverse writes the plaintext back)."""

from typing import Any

from django.db import migrations, models

import kameng.core.fields

CONTEXT = "resellers.reseller.contact"


def encrypt_contacts(apps: Any, schema_editor: Any) -> None:
    Reseller = apps.get_model("resellers", "Reseller")
    for reseller in Reseller.objects.only("pk", "contact").iterator():
        Reseller.objects.filter(pk=reseller.pk).update(contact_encrypted=reseller.contact)


def decrypt_contacts(apps: Any, schema_editor: Any) -> None:
    Reseller = apps.get_model("resellers", "Reseller")
    for reseller in Reseller.objects.only("pk", "contact_encrypted").iterator():
        Reseller.objects.filter(pk=reseller.pk).update(contact=reseller.contact_encrypted or "")


class Migration(migrations.Migration):
    dependencies = [("resellers", "0003_openapi_nonce")]

    operations = [
        migrations.AddField(
            model_name="reseller", name="contact_encrypted",
            field=kameng.core.fields.EncryptedTextField(blank=True, null=True, context=CONTEXT,
                                                        verbose_name="联系方式"),
        ),
        migrations.RunPython(encrypt_contacts, decrypt_contacts, elidable=False),
        migrations.RemoveField(model_name="reseller", name="contact"),
        migrations.RenameField(model_name="reseller", old_name="contact_encrypted", new_name="contact"),
        migrations.AlterField(
            model_name="reseller", name="contact",
            field=kameng.core.fields.EncryptedTextField(blank=True, default="", context=CONTEXT,
                                                        verbose_name="联系方式"),
        ),
    ]
