"""A logging filter that masks personal data and secrets in every record before it is written."""

from __future__ import annotations

import logging

from kameng.core.masking import mask_text


class MaskSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True
