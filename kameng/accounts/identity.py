"""Chinese resident identity numbers (居民身份证号码, GB 11643-1999) and real names: parsing, checks, age, masking.

Pure functions, no database. An 18-character number is: a 6-digit region code (GB/T 2260), the birth date
YYYYMMDD, a 3-digit sequence (odd for men, even for women) and a check digit (ISO 7064 MOD 11-2, 0–9 or X).

Choices:
- Region: only the province-level prefix (the first two digits) is checked, against the compact table below — the
  31 provinces, autonomous regions and municipalities, plus 81/82/83, which the 港澳台居民居住证 (residence
  permits for Hong Kong, Macao and Taiwan residents, same format since 2018) carry. The full GB/T 2260 list has
  thousands of counties, changes every year, and numbers issued under codes since retired stay valid for life, so
  checking the whole code would refuse real people; the provider checks the rest against the registry.
- 15-digit numbers (first generation, 1984–2004) are refused with a clear message: they stopped being valid on
  1 January 2013, and the verification provider checks the 18-digit number. `legacy_to_18` converts one (inserting
  "19" and computing the check digit) for reading old records; it is not used to accept input.
- Birth date: a real calendar date, from 1900-01-01, not after the day it is checked.
- Age: full years (周岁), a year added on the birthday itself; someone born on 29 February turns a year older on
  1 March in a common year.
- Names: 2–20 characters of CJK ideographs, with a middle dot between the parts of a transliterated minority name
  (阿依古丽·买买提); look-alike dots (•・．and others) are normalised to "·" (U+00B7).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from kameng.core.errors import ApplicationError

ID_NUMBER_LENGTH = 18
LEGACY_ID_NUMBER_LENGTH = 15
EARLIEST_BIRTH_DATE = date(1900, 1, 1)
NAME_MIN_LENGTH = 2
NAME_MAX_LENGTH = 20
NAME_DOT = "·"

# ISO 7064 MOD 11-2: weights 2^(17-i) mod 11 for positions 0..16, and the check character for each remainder.
_WEIGHTS = tuple(pow(2, 17 - position, 11) for position in range(17))
_CHECK_CHARACTERS = "10X98765432"

# GB/T 2260 province-level codes (the first two digits).
PROVINCES: dict[str, str] = {
    "11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古",
    "21": "辽宁", "22": "吉林", "23": "黑龙江",
    "31": "上海", "32": "江苏", "33": "浙江", "34": "安徽", "35": "福建", "36": "江西", "37": "山东",
    "41": "河南", "42": "湖北", "43": "湖南", "44": "广东", "45": "广西", "46": "海南",
    "50": "重庆", "51": "四川", "52": "贵州", "53": "云南", "54": "西藏",
    "61": "陕西", "62": "甘肃", "63": "青海", "64": "宁夏", "65": "新疆",
    "71": "台湾", "81": "香港", "82": "澳门", "83": "台湾",
}

# CJK Unified Ideographs, Extension A, compatibility ideographs, and Extensions B–H (rare characters in names).
_IDEOGRAPH = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003347f"
_NAME_RE = re.compile(f"[{_IDEOGRAPH}]+(?:{NAME_DOT}[{_IDEOGRAPH}]+)*")
# Bullet, katakana and half-width middle dots, full-width full stop, bullet and dot operators, hyphenation point.
_NAME_DOT_LOOKALIKES = str.maketrans(dict.fromkeys("\u2022\u30fb\uff65\uff0e\u2219\u22c5\u2027", NAME_DOT))


class IdNumberProblem(StrEnum):
    """Why a number was refused; each is also the `code` of the ApplicationError saying so."""

    FORMAT = "id_number_format"
    LEGACY = "id_number_legacy"
    CHECKSUM = "id_number_checksum"
    BIRTH_DATE = "id_number_birth_date"
    REGION = "id_number_region"


ID_NUMBER_MESSAGES = {
    IdNumberProblem.FORMAT: "身份证号码应为 18 位：前 17 位是数字，最后一位是数字或 X",
    IdNumberProblem.LEGACY: "15 位的第一代身份证号码已停止使用，请输入 18 位第二代身份证号码",
    IdNumberProblem.CHECKSUM: "身份证号码校验位不正确，请检查是否输错",
    IdNumberProblem.BIRTH_DATE: "身份证号码中的出生日期无效",
    IdNumberProblem.REGION: "身份证号码中的地区代码无效",
}
NAME_MESSAGE = "姓名应为 2–20 个汉字，少数民族姓名可用「·」分隔"


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True)
class IdNumber:
    """A checked 18-character number: `number` upper-cased (X), and what it says about its holder."""

    number: str
    region_code: str
    province: str
    birth_date: date
    gender: Gender

    def age_on(self, day: date) -> int:
        return age_on(self.birth_date, day)


class IdNumberError(ApplicationError):
    def __init__(self, problem: IdNumberProblem) -> None:
        super().__init__(ID_NUMBER_MESSAGES[problem], code=problem.value)
        self.problem = problem


def check_character(first_17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first_17, _WEIGHTS, strict=True))
    return _CHECK_CHARACTERS[total % 11]


def _birth_date(text: str, *, today: date) -> date:
    try:
        born = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError as error:
        raise IdNumberError(IdNumberProblem.BIRTH_DATE) from error
    if not EARLIEST_BIRTH_DATE <= born <= today:
        raise IdNumberError(IdNumberProblem.BIRTH_DATE)
    return born


def normalise_id_number(text: str) -> str:
    """Blanks removed (people paste "110101 19900307 123X"), a trailing x upper-cased."""
    return "".join(text.split()).upper()


def parse_id_number(text: str, *, today: date) -> IdNumber:
    """Check an 18-character number (format, check digit, birth date, province) and say what it holds.

    `today` bounds the birth date (no one is born in the future). Raises IdNumberError with the first problem
    found, in that order.
    """
    number = normalise_id_number(text)
    if len(number) == LEGACY_ID_NUMBER_LENGTH and number.isascii() and number.isdigit():
        raise IdNumberError(IdNumberProblem.LEGACY)
    if (len(number) != ID_NUMBER_LENGTH or not number.isascii() or not number[:17].isdigit()
            or not (number[17].isdigit() or number[17] == "X")):
        raise IdNumberError(IdNumberProblem.FORMAT)
    if check_character(number[:17]) != number[17]:
        raise IdNumberError(IdNumberProblem.CHECKSUM)
    born = _birth_date(number[6:14], today=today)
    province = PROVINCES.get(number[:2])
    if province is None:
        raise IdNumberError(IdNumberProblem.REGION)
    gender = Gender.MALE if int(number[16]) % 2 == 1 else Gender.FEMALE
    return IdNumber(number=number, region_code=number[:6], province=province, birth_date=born, gender=gender)


def legacy_to_18(text: str) -> str:
    """A 15-digit first-generation number as its 18-character form: "19" before the 2-digit year, plus the check
    character. Every 15-digit number was issued to someone born in the 1900s."""
    number = normalise_id_number(text)
    if len(number) != LEGACY_ID_NUMBER_LENGTH or not number.isascii() or not number.isdigit():
        raise IdNumberError(IdNumberProblem.FORMAT)
    first_17 = number[:6] + "19" + number[6:]
    return first_17 + check_character(first_17)


def age_on(birth_date: date, day: date) -> int:
    """Full years on `day` (周岁): one more on the birthday itself; a 29 February birthday falls on 1 March in a
    common year. Negative if `day` is before the birth."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def normalise_name(text: str) -> str:
    """Blanks removed (姓名 has none; "张 三" is a typing habit) and look-alike dots made "·"."""
    return "".join(text.split()).translate(_NAME_DOT_LOOKALIKES)


def parse_name(text: str) -> str:
    """A real name in its normal form, or ApplicationError(code="name_format")."""
    name = normalise_name(text)
    if not NAME_MIN_LENGTH <= len(name) <= NAME_MAX_LENGTH or not _NAME_RE.fullmatch(name):
        raise ApplicationError(NAME_MESSAGE, code="name_format")
    return name


def mask_name(name: str) -> str:
    """张三 → 张*, 张小三 → 张*三, 阿依古丽·买买提 → 阿******提: the first and (from three characters) the last."""
    if len(name) <= 1:
        return "*" * len(name)
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_id_number(number: str) -> str:
    """110101199003071234 → 110***********1234: the province and a little more, and the last four."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]
