"""A logging filter that masks personal data and secrets in every record before it is written (and drops the
template context Django's template engine attaches to its DEBUG records)."""

from __future__ import annotations

import logging

from kameng.core.masking import mask_text

_formatter = logging.Formatter()


class MaskSecretsFilter(logging.Filter):
    """Masks the message, and the traceback and stack of the record too: an exception's text often carries the
    very values (a query string, a phone number) the message was careful to leave out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "django.template" and record.levelno <= logging.DEBUG and record.exc_info:
            # "Exception while resolving variable …": the exception's text is the whole template context, the parts
            # of the page already rendered included (a pay page's bank account), which no mask can read. The message
            # still says which variable of which template.
            record.exc_info, record.exc_text = None, None
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            # Formatter.format() uses exc_text when it is set, so the masked text is what every handler prints.
            record.exc_text = _formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True
