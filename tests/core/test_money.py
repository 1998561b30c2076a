from __future__ import annotations

from decimal import Decimal

import pytest

from kameng.core.money import AMOUNT_MAX, MoneyError, format_money, money, parse_amount, to_fen


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.005", "1.01"),
        ("1.004", "1.00"),
        ("2.675", "2.68"),
        ("-1.005", "-1.01"),
        ("0.005", "0.01"),
        (Decimal("9.995"), "10.00"),
        (7, "7.00"),
        (" 12.5 ", "12.50"),
    ],
)
def test_money_quantises_to_the_fen_half_up(value: Decimal | int | str, expected: str) -> None:
    result = money(value)

    assert result == Decimal(expected)
    assert result.as_tuple().exponent == -2


def test_money_refuses_a_float() -> None:
    with pytest.raises(MoneyError, match="money must not be a float"):
        money(0.1)  # type: ignore[arg-type]


def test_money_refuses_a_boolean() -> None:
    with pytest.raises(MoneyError, match="money must not be a boolean"):
        money(True)


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-Infinity", Decimal("NaN"), "abc", ""])
def test_money_refuses_what_is_not_a_finite_number(value: Decimal | str) -> None:
    with pytest.raises(MoneyError, match="not an amount of money"):
        money(value)


@pytest.mark.parametrize(("text", "expected"), [("12.5", "12.50"), ("0.01", "0.01"), (" 100 ", "100.00"),
                                                 ("3.10", "3.10")])
def test_parse_amount_accepts_up_to_two_decimals(text: str, expected: str) -> None:
    assert parse_amount(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["1.001", "0.005", "12.345"])
def test_parse_amount_refuses_more_than_two_decimals(text: str) -> None:
    with pytest.raises(MoneyError) as error:
        parse_amount(text)

    assert str(error.value) == "金额最多两位小数"


@pytest.mark.parametrize("text", ["0", "0.00", "-1", "-0.01"])
def test_parse_amount_refuses_zero_and_negative(text: str) -> None:
    with pytest.raises(MoneyError) as error:
        parse_amount(text)

    assert str(error.value) == "金额必须大于 0"


@pytest.mark.parametrize("text", ["abc", "", "1,000", "¥5", "NaN", "Infinity", "1e", "--1", "1e2", "+5", "１００",
                                  "0x10", "1_000", "5 0", "."])
def test_parse_amount_refuses_garbage(text: str) -> None:
    with pytest.raises(MoneyError) as error:
        parse_amount(text)

    assert str(error.value) == "请输入有效的金额"


def test_parse_amount_refuses_below_minimum() -> None:
    with pytest.raises(MoneyError) as error:
        parse_amount("0.99", minimum=Decimal("1.00"))

    assert str(error.value) == "金额不能低于 ¥1.00"


def test_parse_amount_refuses_above_maximum() -> None:
    with pytest.raises(MoneyError) as error:
        parse_amount("50000.01", maximum=Decimal("50000.00"))

    assert str(error.value) == "金额不能超过 ¥50,000.00"


@pytest.mark.parametrize("text", ["9" * 40, "1" + "0" * 26, "9" * 27 + ".99", "10000000000", "9999999999.991"])
def test_parse_amount_refuses_a_huge_amount_with_a_clear_message(text: str) -> None:
    for maximum, shown in ((None, "9,999,999,999.99"), (Decimal("50000.00"), "50,000.00"),
                           (Decimal("1" + "0" * 20), "9,999,999,999.99")):
        with pytest.raises(MoneyError) as error:
            parse_amount(text, maximum=maximum)

        assert str(error.value) == f"金额不能超过 ¥{shown}"


def test_parse_amount_accepts_the_largest_amount() -> None:
    assert parse_amount("9999999999.99") == AMOUNT_MAX


@pytest.mark.parametrize("value", [Decimal("1e30"), "9" * 40, 10**40])
def test_money_refuses_more_digits_than_decimal_holds(value: Decimal | str | int) -> None:
    with pytest.raises(MoneyError, match="amount too large"):
        money(value)


def test_parse_amount_accepts_the_bounds_themselves() -> None:
    assert parse_amount("1.00", minimum=Decimal("1.00"), maximum=Decimal("5.00")) == Decimal("1.00")
    assert parse_amount("5", minimum=Decimal("1.00"), maximum=Decimal("5.00")) == Decimal("5.00")


@pytest.mark.parametrize(("amount", "fen"), [("0.01", 1), ("12.50", 1250), ("9.995", 1000), ("100", 10000)])
def test_to_fen(amount: str, fen: int) -> None:
    result = to_fen(Decimal(amount))

    assert result == fen
    assert isinstance(result, int)


def test_format_money() -> None:
    assert format_money(Decimal("1234.5")) == "¥1,234.50"
