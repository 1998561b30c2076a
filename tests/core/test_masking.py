from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from kameng.core.logging import MaskSecretsFilter
from kameng.core.masking import Revealed, mask_phone, mask_secret, mask_text

ID_NUMBER = "11010519491231002X"


@pytest.mark.parametrize(("value", "expected"), [("ABCD-1234-WXYZ", "AB**********YZ"), ("abcdefg", "ab***fg"),
                                                 ("123456", "******"), ("", "")])
def test_mask_secret(value: str, expected: str) -> None:
    assert mask_secret(value) == expected


def test_mask_phone() -> None:
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone("+8613800138000") == "+8**********00"


def test_mask_text_masks_phone_id_number_and_key_values() -> None:
    text = f"user 13912345678 id={ID_NUMBER} sign=0a1b2c3d&password: hunter22, token='abc' other=1"

    masked = mask_text(text)

    assert masked == "user 139****5678 id=110105********002X sign=***&password: ***, token='***' other=1"


def test_mask_text_masks_prefixed_secret_names() -> None:
    # Regression: `\b` did not fire after `_`, so `app_secret=…` and `api_key=…` reached the logs in clear.
    masked = mask_text('app_secret=s3cr3t api_key: k3y {"mch_key": "abc"} sign_type=MD5 monkey=2')

    assert masked == 'app_secret=*** api_key: *** {"mch_key": "***"} sign_type=MD5 monkey=2'


def test_mask_text_leaves_longer_digit_runs_and_plain_text_alone() -> None:
    assert mask_text("order 261126143905123048213 amount=9.50") == "order 261126143905123048213 amount=9.50"


def test_mask_text_masks_lowercase_x_id_numbers() -> None:
    assert mask_text("44030119900101123x") == "440301********123x"


def test_logging_filter_masks_a_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(MaskSecretsFilter())
    logger = logging.getLogger("kameng.tests.masking")

    with caplog.at_level(logging.INFO, logger="kameng.tests.masking"):
        logger.info("notify from %s, id %s, query out_trade_no=K1&sign=%s", "13800138000", ID_NUMBER, "deadbeef99")

    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "13800138000" not in message
    assert ID_NUMBER not in message
    assert "deadbeef99" not in message
    expected = "notify from 138****8000, id 110105********002X, query out_trade_no=K1&sign=***"
    assert message == expected
    assert caplog.text.rstrip().endswith(expected)


def test_logging_filter_leaves_clean_records_untouched() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "paid %s", ("K123",), None)

    assert MaskSecretsFilter().filter(record) is True
    assert record.msg == "paid %s"
    assert record.args == ("K123",)


def test_settings_attach_the_filter_to_the_console_handler() -> None:
    from django.conf import settings

    logging_settings = cast(dict[str, Any], settings.LOGGING)
    assert "mask_secrets" in logging_settings["handlers"]["console"]["filters"]
    assert logging_settings["filters"]["mask_secrets"]["()"] == "kameng.core.logging.MaskSecretsFilter"
    configured = [handler for handler in logging.getLogger().handlers
                  if any(isinstance(f, MaskSecretsFilter) for f in handler.filters)]
    assert configured, "the root logger's console handler must carry MaskSecretsFilter"


def test_logging_filter_masks_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(MaskSecretsFilter())
    logger = logging.getLogger("kameng.tests.masking")

    with caplog.at_level(logging.INFO, logger="kameng.tests.masking"):
        try:
            raise ValueError("gateway said no for phone 13800138000, sign=deadbeef99")
        except ValueError:
            logger.exception("refund failed")

    assert "13800138000" not in caplog.text
    assert "deadbeef99" not in caplog.text
    assert "138****8000" in caplog.text
    assert "Traceback" in caplog.text


def test_django_loggers_go_through_the_masked_root_handler() -> None:
    django_logger = logging.getLogger("django")
    assert django_logger.handlers == []
    assert django_logger.propagate


def _ours(handlers: list[logging.Handler]) -> list[logging.Handler]:
    """The handlers the settings configured (pytest adds its own capture handlers beside them)."""
    return [handler for handler in handlers if not type(handler).__module__.startswith("_pytest")]


def test_every_handler_that_prints_masks() -> None:
    server = logging.getLogger("django.server")
    assert not server.propagate
    assert _ours(server.handlers)
    assert all(any(isinstance(f, MaskSecretsFilter) for f in handler.filters) for handler in _ours(server.handlers))
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING  # URLs with keys in them


def test_the_celery_worker_keeps_the_masked_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging.config

    from celery.signals import setup_logging
    from django.conf import settings

    from kameng.celery import use_the_projects_logging

    # A receiver on setup_logging is what stops Celery from replacing the root handlers with unmasked ones.
    assert use_the_projects_logging in [receiver() for _, receiver in setup_logging.receivers]
    applied: list[object] = []
    monkeypatch.setattr(logging.config, "dictConfig", applied.append)  # keep pytest's own handlers in place

    setup_logging.send(sender=None, loglevel="INFO", logfile=None, format="", colorize=False)

    assert applied == [settings.LOGGING]


def test_mask_text_leaves_celery_timings_alone() -> None:
    # Regression: the ID-number shape matched inside the fraction and printed "0.005542********6287s".
    lines = ["Task kameng.orders.tasks.expire_unpaid_orders[5b6c] succeeded in 0.0055426287s: 0",
             "Task kameng.payments.tasks.redrive_pending_payments[1a] succeeded in 0.005542123456786287s: 3"]

    assert [mask_text(line) for line in lines] == lines


def test_mask_text_leaves_order_numbers_hex_addresses_and_uuids_alone() -> None:
    line = ("order K202612031381234567890 paid; <Order object at 0x7f13812345678>; "
            "request 3f2a1c4e-1b2c-4d5e-9f00-123456789abc; payment P20261203138123456789")

    assert mask_text(line) == line


def test_mask_text_leaves_traceback_lines_alone() -> None:
    line = ('  File "/srv/kameng/.venv/lib/python3.11/site-packages/django/db/backends/utils.py", line 105, '
            "in _execute\n    return self.cursor.execute(sql, params)\nKeyError: 'sku_13812345678_price'")

    assert mask_text(line) == line


def test_mask_text_masks_phone_shapes() -> None:
    masked = mask_text("phone 13812345678. 手机13812345678，+8613800138000 (86 13900139000)")

    assert masked == "phone 138****5678. 手机138****5678，+86138****8000 (86 139****9000)"


def test_mask_text_masks_authorization_headers() -> None:
    masked = mask_text("Authorization: Bearer eyJhbGciOi.abc\n"
                       "headers={'Authorization': 'WECHATPAY2-SHA256-RSA2048 mchid=\"1900\",signature=\"c2ln\"', "
                       "'Accept': 'application/json'}")

    assert masked == "Authorization: ***\nheaders={'Authorization': ***, 'Accept': 'application/json'}"


def test_mask_text_masks_card_secrets_shaped_like_keys() -> None:
    assert mask_text("delivered ABCD-1234-WXYZ-5678 to 7") == "delivered AB***************78 to 7"


def test_mask_text_masks_signature_and_secret_field_values() -> None:
    masked = mask_text("signature=c2lnbmVk&passwd=x1 {'cvv': '123', 'card_secret': 'S3CR3T'}")

    assert masked == "signature=***&passwd=*** {'cvv': '***', 'card_secret': '***'}"


def test_a_revealed_value_renders_in_full_and_reprs_masked() -> None:
    from django.template import Context, Template

    value = Revealed("6222020200112233445")

    assert Template("{{ account }}").render(Context({"account": value})) == "6222020200112233445"
    assert repr({"account": value}) == "{'account': '62***************45'}"
    assert "6222020200112233445" not in repr([value])


def test_the_template_engines_context_dump_is_dropped() -> None:
    from django.template import Context, Template

    logger = logging.getLogger("django.template")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(MaskSecretsFilter())
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        Template("{{ holder }} {{ missing.attribute }}").render(Context({"holder": "东方既白"}))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

    assert records, "Django logs a missing variable at DEBUG"
    assert all(record.exc_info is None and record.exc_text is None for record in records)
    assert all("东方既白" not in record.getMessage() for record in records)
