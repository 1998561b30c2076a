"""The pure ID-number and name checks (kameng.accounts.identity): no database."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kameng.accounts.identity import (
    PROVINCES,
    Gender,
    IdNumberError,
    IdNumberProblem,
    age_on,
    check_character,
    legacy_to_18,
    mask_id_number,
    mask_name,
    parse_id_number,
    parse_name,
)
from kameng.core.errors import ApplicationError
from tests.accounts.ids import id_number, with_check

TODAY = date(2026, 12, 3)


def _problem(text: str, today: date = TODAY) -> IdNumberProblem:
    with pytest.raises(IdNumberError) as refused:
        parse_id_number(text, today=today)
    assert refused.value.code == refused.value.problem.value
    return refused.value.problem


# --- check digit ----------------------------------------------------------------------------------------------

def test_the_standard_example_with_an_x_check_digit_parses() -> None:
    parsed = parse_id_number("11010519491231002X", today=TODAY)

    assert parsed.number == "11010519491231002X"
    assert parsed.region_code == "110105"
    assert parsed.province == "北京"
    assert parsed.birth_date == date(1949, 12, 31)
    assert parsed.gender == Gender.FEMALE  # 17th digit 2: even
    assert parsed.age_on(TODAY) == 76


def test_a_lower_case_x_is_accepted_and_upper_cased() -> None:
    assert parse_id_number("11010519491231002x", today=TODAY).number == "11010519491231002X"


def test_blanks_inside_a_pasted_number_are_ignored() -> None:
    assert parse_id_number(" 110105 19491231 002X ", today=TODAY).number == "11010519491231002X"


@pytest.mark.parametrize("wrong", [c for c in "0123456789X" if c != "X"])
def test_every_wrong_check_character_is_refused(wrong: str) -> None:
    assert _problem("11010519491231002" + wrong) == IdNumberProblem.CHECKSUM


def test_an_x_where_the_check_digit_is_a_digit_is_refused() -> None:
    valid = id_number()
    assert not valid.endswith("X")

    assert _problem(valid[:17] + "X") == IdNumberProblem.CHECKSUM


@pytest.mark.parametrize("text", ["", "1101051949123100", "11010519491231002XX", "1101051949123X002X",
                                  "11010519491231002Y", "１１０１０５１９４９１２３１００２X", "11010519491231002-",
                                  "X10105194912310021"])
def test_malformed_numbers_are_refused_as_format(text: str) -> None:
    assert _problem(text) == IdNumberProblem.FORMAT


def test_check_character_matches_the_standard_weights() -> None:
    assert check_character("11010519491231002") == "X"
    assert check_character("44052418800101001") == with_check("44052418800101001")[-1]


# --- 15-digit legacy numbers --------------------------------------------------------------------------------------

def test_a_15_digit_number_is_refused_with_its_own_message() -> None:
    with pytest.raises(IdNumberError) as refused:
        parse_id_number("110105491231002", today=TODAY)

    assert refused.value.problem == IdNumberProblem.LEGACY
    assert refused.value.message == "15 位的第一代身份证号码已停止使用，请输入 18 位第二代身份证号码"


def test_a_15_digit_number_converts_to_its_18_character_form() -> None:
    assert legacy_to_18("110105491231002") == "11010519491231002X"
    assert parse_id_number(legacy_to_18("440524800101001"), today=TODAY).birth_date == date(1980, 1, 1)


def test_only_15_digits_convert() -> None:
    with pytest.raises(IdNumberError):
        legacy_to_18("11010549123100X")


# --- birth date -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("born", "ok"), [
    ("20000229", True),  # 2000 is a leap year (divisible by 400)
    ("19960229", True),
    ("19000229", False),  # 1900 is not (divisible by 100)
    ("20010229", False),
    ("19990230", False),
    ("19990431", False),
    ("19991301", False),
    ("19990001", False),
    ("19990100", False),
    ("19000101", True),
    ("18991231", False),
])
def test_the_birth_date_must_be_a_real_date_from_1900(born: str, ok: bool) -> None:
    number = id_number(born=born)
    if ok:
        assert parse_id_number(number, today=TODAY).birth_date.strftime("%Y%m%d") == born
    else:
        assert _problem(number) == IdNumberProblem.BIRTH_DATE


def test_a_birth_date_after_today_is_refused_and_today_is_not() -> None:
    assert parse_id_number(id_number(born=TODAY.strftime("%Y%m%d")), today=TODAY).age_on(TODAY) == 0
    assert _problem(id_number(born=(TODAY + timedelta(days=1)).strftime("%Y%m%d"))) == IdNumberProblem.BIRTH_DATE


# --- region ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("region", ["000000", "100101", "160101", "390101", "660101", "900101", "990101"])
def test_a_number_outside_every_province_is_refused(region: str) -> None:
    assert _problem(id_number(region=region)) == IdNumberProblem.REGION


@pytest.mark.parametrize("prefix", sorted(PROVINCES))
def test_every_province_code_is_accepted(prefix: str) -> None:
    assert parse_id_number(id_number(region=prefix + "0101"), today=TODAY).province == PROVINCES[prefix]


def test_the_province_table_is_the_34_gb_t_2260_codes_and_the_residence_permits() -> None:
    assert len(PROVINCES) == 35
    assert {"81", "82", "83"} <= set(PROVINCES)


def test_problems_are_found_in_order_checksum_before_date_before_region() -> None:
    # A wrong check digit on a number whose date and region are wrong too: the check digit is what is said.
    bad_everything = id_number(region="990101", born="19991301")
    assert _problem(bad_everything[:17] + ("0" if bad_everything[-1] != "0" else "1")) == IdNumberProblem.CHECKSUM
    assert _problem(bad_everything) == IdNumberProblem.BIRTH_DATE


# --- gender and age -------------------------------------------------------------------------------------------------

def test_gender_is_the_parity_of_the_17th_digit() -> None:
    assert parse_id_number(id_number(sequence="001"), today=TODAY).gender == Gender.MALE
    assert parse_id_number(id_number(sequence="002"), today=TODAY).gender == Gender.FEMALE


def test_a_year_is_added_on_the_birthday_itself() -> None:
    born = date(2008, 12, 3)

    assert age_on(born, date(2026, 12, 2)) == 17
    assert age_on(born, date(2026, 12, 3)) == 18
    assert age_on(born, date(2026, 12, 4)) == 18
    assert age_on(born, date(2027, 12, 2)) == 18


def test_a_29_february_birthday_counts_on_1_march_in_a_common_year() -> None:
    born = date(2008, 2, 29)

    assert age_on(born, date(2026, 2, 28)) == 17
    assert age_on(born, date(2026, 3, 1)) == 18
    assert age_on(born, date(2028, 2, 28)) == 19
    assert age_on(born, date(2028, 2, 29)) == 20


def test_the_age_on_the_day_of_birth_is_zero() -> None:
    assert age_on(date(2026, 1, 1), date(2026, 1, 1)) == 0
    assert age_on(date(2026, 1, 1), date(2026, 12, 31)) == 0


# --- names ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "name"), [
    ("张三", "张三"), (" 张 三 ", "张三"), ("欧阳娜娜", "欧阳娜娜"), ("阿依古丽·买买提", "阿依古丽·买买提"),
    ("阿依古丽•买买提", "阿依古丽·买买提"), ("阿依古丽・买买提", "阿依古丽·买买提"),
    ("阿依古丽．买买提", "阿依古丽·买买提"),
    ("王𠇔", "王𠇔"),  # a rare character outside the basic block (Extension B)
    ("龘" * 20, "龘" * 20),
])
def test_valid_names(text: str, name: str) -> None:
    assert parse_name(text) == name


@pytest.mark.parametrize("text", ["", "张", "龘" * 21, "Zhang San", "张三1", "张三a", "·张三", "张三·", "张··三",
                                  "张三😀", "张-三", "ﾁｬﾝ"])
def test_invalid_names(text: str) -> None:
    with pytest.raises(ApplicationError) as refused:
        parse_name(text)

    assert refused.value.code == "name_format"


# --- masking ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "masked"), [("张三", "张*"), ("张小三", "张*三"), ("欧阳娜娜", "欧**娜"),
                                              ("阿依古丽·买买提", "阿******提")])
def test_names_are_masked_to_their_first_and_last_characters(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_id_numbers_are_masked_but_for_three_first_and_four_last() -> None:
    assert mask_id_number("110105199003071234") == "110***********1234"
    assert mask_id_number("11010519491231002X") == "110***********002X"


# --- properties ---------------------------------------------------------------------------------------------------

_births = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
_sequences = st.integers(min_value=0, max_value=999).map(lambda n: f"{n:03d}")
_regions = st.tuples(st.sampled_from(sorted(PROVINCES)), st.integers(min_value=0, max_value=9999)).map(
    lambda parts: f"{parts[0]}{parts[1]:04d}")
_valid_numbers = st.builds(lambda region, born, sequence: id_number(region=region, born=born.strftime("%Y%m%d"),
                                                                    sequence=sequence),
                           _regions, _births, _sequences)


@settings(deadline=None)  # a loaded CI machine is slow now and then; these are not timing tests
@given(number=_valid_numbers)
def test_every_well_formed_number_parses_and_says_its_birth_date(number: str) -> None:
    parsed = parse_id_number(number.lower(), today=TODAY)

    assert parsed.number == number
    assert parsed.birth_date.strftime("%Y%m%d") == number[6:14]
    assert parsed.age_on(TODAY) >= 0


@settings(deadline=None)  # a loaded CI machine is slow now and then; these are not timing tests
@given(number=_valid_numbers, position=st.integers(min_value=0, max_value=16), digit=st.integers(0, 9))
def test_any_single_digit_changed_is_caught_by_the_check_digit(number: str, position: int, digit: int) -> None:
    changed = number[:position] + str(digit) + number[position + 1:]
    if changed != number:
        assert _problem(changed) == IdNumberProblem.CHECKSUM


@settings(deadline=None)  # a loaded CI machine is slow now and then; these are not timing tests
@given(number=_valid_numbers, position=st.integers(min_value=0, max_value=15))
def test_any_two_neighbouring_digits_swapped_is_caught(number: str, position: int) -> None:
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2:]
    if swapped != number:
        assert _problem(swapped) == IdNumberProblem.CHECKSUM


@settings(deadline=None)  # a loaded CI machine is slow now and then; these are not timing tests
@given(born=_births, first=st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1)),
       days=st.integers(min_value=0, max_value=40000))
def test_age_never_decreases_and_is_full_years(born: date, first: date, days: int) -> None:
    later = first + timedelta(days=days)
    assert age_on(born, first) <= age_on(born, later)
    if later >= born:
        age = age_on(born, later)
        assert age >= 0
        # The last birthday passed is at most a year ago (a 29 February one counts on 1 March).
        assert (later - born).days // 366 <= age <= (later - born).days // 365


@settings(deadline=None)  # a loaded CI machine is slow now and then; these are not timing tests
@given(name=st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=2, max_size=20))
def test_every_chinese_name_of_2_to_20_characters_is_accepted_and_masked(name: str) -> None:
    assert parse_name(name) == name
    masked = mask_name(name)
    assert len(masked) == len(name)
    assert masked[0] == name[0]
    assert masked.count("*") == max(1, len(name) - 2)
