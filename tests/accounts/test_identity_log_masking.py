"""Log masking of real names and ID numbers (kameng.core.masking, through the logging filter)."""

from __future__ import annotations

import logging

import pytest

from kameng.core.logging import MaskSecretsFilter
from kameng.core.masking import mask_person_name, mask_text

ID_NUMBER = "11010519491231002X"


@pytest.mark.parametrize(("text", "masked"), [
    (f"身份证 {ID_NUMBER}。", "身份证 110105********002X。"),
    (f"id {ID_NUMBER.lower()}", "id 110105********002x"),
    ("old number 110105491231002 seen", "old number 110105******002 seen"),
    ("姓名：张小三 ok", "姓名：张*三 ok"),
    ("姓名:张三,", "姓名:张*,"),
    ("real_name=欧阳娜娜&x=1", "real_name=欧**娜&x=1"),
    ("legal_name: '阿依古丽·买买提'", "legal_name: '阿******提'"),
    ('{"Name": "张三", "IdCard": "12345"}', '{"Name": "张*", "IdCard": "***"}'),
    ('{"Name": "\\u5f20\\u4e09"}', '{"Name": "***"}'),
    ("id_number=1101051949", "id_number=***"),
    ("身份证号：11010519491231", "身份证号：***"),
])
def test_names_and_id_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize("text", ["product_name=王者荣耀点券", "username=bob", "订单 K202612031234567890 已支付",
                                  "took 0.110105491231002s"])
def test_what_is_not_a_person_stays(text: str) -> None:
    assert mask_text(text) == text


def test_a_name_that_is_not_chinese_is_masked_whole() -> None:
    assert mask_person_name("Zhang") == "***"
    assert mask_person_name("张") == "***"


def test_the_logging_filter_masks_arguments_too() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "verify %s for real_name=%s", (ID_NUMBER, "张小三"),
                               None)

    MaskSecretsFilter().filter(record)

    assert record.getMessage() == "verify 110105********002X for real_name=张*三"
