"""Numbers as patients type them: digits in any width, words in three languages, units, hedges, signs,
and refusing text that holds two different numbers or words that are not about a number."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nlu.numbers import parse_number, parse_zh_numeral


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", "5"),
        (" 7 ", "7"),
        ("０", "0"),
        ("１０", "10"),
        ("３７．５", "37.5"),
        ("37.5", "37.5"),
        ("37,5", "37.5"),
        ("6.8", "6.8"),
        ("100", "100"),
        ("120", "120"),
        ("5.", "5"),
        ("5。", "5"),
    ],
)
def test_digits_in_any_width_with_a_decimal_point_or_comma(text: str, expected: str) -> None:
    assert parse_number(text) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("zero", 0),
        ("one", 1),
        ("five", 5),
        ("Five", 5),
        ("ten", 10),
        ("thirteen", 13),
        ("twenty", 20),
        ("twenty one", 21),
        ("twenty-one", 21),
        ("ninety nine", 99),
        ("a hundred", 100),
        ("one hundred", 100),
        ("hundred", 100),
        ("thirty seven point five", Decimal("37.5")),
    ],
)
def test_english_number_words(text: str, expected: int | Decimal) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("零", 0),
        ("一", 1),
        ("五", 5),
        ("两", 2),
        ("十", 10),
        ("十五", 15),
        ("二十", 20),
        ("二十三", 23),
        ("九十九", 99),
        ("一百", 100),
        ("三点五", Decimal("3.5")),
        ("三十七点五", Decimal("37.5")),
    ],
)
def test_chinese_numerals(text: str, expected: int | Decimal) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("không", 0),
        ("một", 1),
        ("năm", 5),
        ("bảy", 7),
        ("bẩy", 7),
        ("mười", 10),
        ("mười một", 11),
        ("mười lăm", 15),
        ("hai mươi", 20),
        ("hai mươi mốt", 21),
        ("hai mươi tư", 24),
        ("hai lăm", 25),
        ("chín mươi chín", 99),
        ("một trăm", 100),
        ("ba mươi bảy phẩy năm", Decimal("37.5")),
        ("năm rưỡi", Decimal("5.5")),
        ("nam", 5),  # typed without tone marks
        ("hai muoi mot", 21),
    ],
)
def test_vietnamese_number_words_with_and_without_tone_marks(text: str, expected: int | Decimal) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5分", "5"),
        ("五分", "5"),
        ("大概七分吧", "7"),
        ("十分", "10"),
        ("7 điểm", "7"),
        ("khoảng năm điểm", "5"),
        ("không đau", "0"),  # "no pain": đau (pain) is a word around the number
        ("tôi cho 8 điểm", "8"),
        ("8 points", "8"),
        ("eight points", "8"),
        ("about 5", "5"),
        ("about five", "5"),
        ("I think seven", "7"),
        ("give it a five", "5"),
        ("38度", "38"),
        ("38度5", "38.5"),
        ("三十八度五", "38.5"),
        ("37.5°C", "37.5"),
        ("37,5 độ", "37.5"),
        ("7.2%", "7.2"),
        ("70kg", "70"),
        ("my pain is about 5 today", "5"),
        ("5, 5", "5"),
        ("five 5", "5"),
    ],
)
def test_units_and_hedges_around_the_number_are_ignored(text: str, expected: str) -> None:
    assert parse_number(text) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-3", "-3"),
        ("−3", "-3"),
        ("-37.5", "-37.5"),
        ("âm 3", "-3"),
        ("âm ba", "-3"),
        ("负三", "-3"),
        ("负3", "-3"),
        ("minus 3", "-3"),
        ("minus three", "-3"),
        ("negative 2", "-2"),
    ],
)
def test_negative_numbers(text: str, expected: str) -> None:
    assert parse_number(text) == Decimal(expected)


@pytest.mark.parametrize(
    "text",
    [
        "5 or 6",
        "5-6",
        "5 to 6",
        "5 or six",
        "3/12",
        "10:30",
        "七八分",
        "1.2.3",
        "five or six",
    ],
)
def test_two_different_numbers_are_ambiguous(text: str) -> None:
    assert parse_number(text) is None


@pytest.mark.parametrize(
    "text",
    ["", "   ", "abc", "không biết", "一般", "不知道", "I don't know", "none", "a", "hundreds"],
)
def test_text_without_a_readable_number(text: str) -> None:
    # "không biết" (I don't know) must not become 0, nor 一般 (so-so) become 1.
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("五", "5"),
        ("十五", "15"),
        ("二十三", "23"),
        ("一百零五", "105"),
        ("一百五", "150"),
        ("两百", "200"),
        ("三点五", "3.5"),
        ("负三", "-3"),
    ],
)
def test_chinese_numeral_parser(text: str, expected: str) -> None:
    assert parse_zh_numeral(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["", "十十", "五五", "点五", "三点", "百百"])
def test_chinese_numeral_parser_refuses_malformed(text: str) -> None:
    assert parse_zh_numeral(text) is None
