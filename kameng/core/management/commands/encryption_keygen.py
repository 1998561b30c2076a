"""`manage.py encryption_keygen`: print a fresh encryption key entry and a blind-index key.

The output is meant to be pasted into the environment (or `.env`). To rotate, put the new entry FIRST in
`KAMENG_ENCRYPTION_KEYS` (the first entry encrypts, every entry decrypts), keep the old one after it, deploy, then
run `manage.py encryption_rotate`; the old entry can go once that reports nothing left under the old key id.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from kameng.core.crypto import generate_key

MAX_KEY_ID_BYTES = 32


class Command(BaseCommand):
    help = "Print a new 'kid:base64' encryption key entry and a new blind-index key (nothing is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--key-id", default="", help="key id for the new entry (default: k<date>-<random>)")
        parser.add_argument("--entry-only", action="store_true",
                            help="print only the 'kid:base64' entry (handy in scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        key_id = options["key_id"] or f"k{timezone.now():%Y%m%d}-{secrets.token_hex(2)}"
        if ":" in key_id or "," in key_id or not key_id.strip() or len(key_id.encode()) > MAX_KEY_ID_BYTES:
            raise CommandError("the key id must be 1–32 bytes without ':' or ','")
        entry = f"{key_id}:{generate_key()}"
        if options["entry_only"]:
            self.stdout.write(entry)
            return
        self.stdout.write(f"KAMENG_ENCRYPTION_KEYS={entry}")
        self.stdout.write(f"KAMENG_BLIND_INDEX_KEY={generate_key()}")
        self.stdout.write(
            "# To rotate: put the new entry first and keep the old ones after it, e.g.\n"
            f"#   KAMENG_ENCRYPTION_KEYS={entry},<old kid>:<old key>\n"
            "# then run `manage.py encryption_rotate`. Keep the blind-index key you already have: changing it\n"
            "# invalidates every fingerprint (duplicate detection of card keys, lookups by phone number)."
        )
