"""Numbers as patients type them: digits (full-width too), number words in zh/vi/en, units and hedges."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

# Both "." and "," are decimal points: Vietnamese writes 37,5 and the values we ask for (temperature,
# glucose, weight, scores) never need a thousands separator.
_DIGITS = re.compile(
    r"(?:(?<![\w.,])(?P<sign>-|−)|(?P<word>âm|trừ|负|minus|negative)\s*)?"
    r"(?<!\d)(?<!\d[.,])(?P<num>\d+(?:[.,]\d+)?)(?![.,]?\d)"
)
# "38度5" is how Chinese speakers say 38.5 degrees.
_ZH_DEGREES = re.compile(r"(\d+)\s*度\s*(\d)(?!\d)")
_ZH_DEGREES_WORDS = re.compile(r"度(?=[零〇一二两三四五六七八九]$)")

_EN_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_EN_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_EN_WORDS = {*_EN_UNITS, *_EN_TENS, "hundred", "point", "a", "and"}

# Vietnamese, with and without tone marks (patients often type without them).
_VI_UNITS = {
    "không": 0, "khong": 0, "một": 1, "mot": 1, "hai": 2, "ba": 3, "bốn": 4, "bon": 4, "năm": 5,
    "nam": 5, "sáu": 6, "sau": 6, "bảy": 7, "bẩy": 7, "bay": 7, "tám": 8, "tam": 8, "chín": 9, "chin": 9,
}  # fmt: skip
# Forms used only after a tens word: hai mươi mốt (21), hai mươi tư (24), mười lăm (15).
_VI_AFTER_TENS = {"mốt": 1, "tư": 4, "lăm": 5, "nhăm": 5, "lam": 5, "nham": 5}
_VI_TEN = {"mười", "muoi"}
_VI_TENS = {"mươi", "muoi", "mười"}
_VI_HUNDRED = {"trăm", "tram"}
_VI_POINT = {"phẩy", "phay", "chấm", "cham"}
_VI_HALF = {"rưỡi", "ruoi"}
_VI_NEGATIVE = {"âm", "trừ"}
_VI_WORDS = {
    *_VI_UNITS, *_VI_AFTER_TENS, *_VI_TEN, *_VI_TENS, *_VI_HUNDRED, *_VI_POINT, *_VI_HALF, "lẻ", "linh"
}  # fmt: skip

_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}  # fmt: skip
_ZH_NUMERAL = re.compile(r"负?[零〇一二两兩三四五六七八九十百]+(?:点[零〇一二两兩三四五六七八九]+)?")

# Words around a number that do not change it: hedges, units, "I give it". Anything else makes
# a number-word answer unreadable, so that "không biết" (I don't know) never becomes 0.
_NOISE_WORDS = {
    # en
    "about", "around", "approximately", "approx", "roughly", "maybe", "probably", "perhaps", "like",
    "i", "i'd", "id", "think", "say", "would", "give", "it", "it's", "its", "is", "was", "my", "the",
    "score", "rating", "rate", "level", "pain", "points", "pts", "pt", "stars", "star", "degrees",
    "degree", "celsius", "c", "°c", "°", "kg", "kgs", "kilos", "kilograms", "mmol", "mmol/l", "%",
    "percent", "times", "time", "days", "day", "weeks", "years", "just", "only", "exactly",
    # vi (and their forms without tone marks)
    "khoảng", "khoang", "chừng", "chung", "tầm", "độ", "do", "điểm", "diem", "sao", "tôi", "toi",
    "cho", "chấm", "là", "la", "được", "duoc", "mức", "muc", "lần", "lan", "ngày", "ngay", "tuần",
    "tuan", "cân", "ký", "ky", "kí", "ki", "c°", "đau", "dau", "chắc", "chac", "thôi", "thoi", "ạ",
    "a", "nhé", "nhe",
}  # fmt: skip
_ZH_NOISE = re.compile(
    r"大概|大约|大約|约|約|左右|差不多|应该|應該|可能|我觉得|我覺得|我|给|給|打|是|吧|啊|呀|了|的|吗"
    r"|摄氏度|攝氏度|度|分|个|個|颗|顆|星|级|級|次|公斤|千克|岁|歲|天|周|里|疼痛|疼|痛|只有|只|就"
)
_ASCII_DIGIT = re.compile(r"[0-9]")
_SPLIT = re.compile(r"[\s,，;；:：!！?？。、~～()（）\"'“”]+|(?<=[a-zà-ỹđ])-(?=[a-zà-ỹđ])")
_CJK = re.compile(r"[\u3400-\u9fff]")


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None


def _digit_numbers(text: str) -> list[Decimal]:
    numbers = []
    for match in _DIGITS.finditer(text):
        value = _decimal(match.group("num"))
        if value is None:
            continue
        numbers.append(-value if match.group("sign") or match.group("word") else value)
    return numbers


def _en_run(words: list[str]) -> Decimal | None:
    """A run of English number words, 0-999 with an optional "point d d"."""
    if "point" in words:
        at = words.index("point")
        whole, digits = words[:at], words[at + 1 :]
        if not digits or any(_EN_UNITS.get(w, 10) > 9 for w in digits):
            return None
        whole_value = _en_run(whole) if whole else Decimal(0)
        tail = "".join(str(_EN_UNITS[w]) for w in digits)
        return None if whole_value is None else Decimal(f"{whole_value}.{tail}")
    value = 0
    if "hundred" in words:
        at = words.index("hundred")
        head = words[:at]
        if head not in ([], ["a"], ["one"]) and not (len(head) == 1 and 1 <= _EN_UNITS.get(head[0], 0) <= 9):
            return None
        value = 100 * (_EN_UNITS.get(head[0], 1) if head else 1)
        words = words[at + 1 :]
        if words[:1] == ["and"]:
            words = words[1:]
        if not words:
            return Decimal(value)
    if len(words) == 1 and words[0] in _EN_UNITS:
        return Decimal(value + _EN_UNITS[words[0]])
    if len(words) == 1 and words[0] in _EN_TENS:
        return Decimal(value + _EN_TENS[words[0]])
    if len(words) == 2 and words[0] in _EN_TENS and 1 <= _EN_UNITS.get(words[1], 0) <= 9:
        return Decimal(value + _EN_TENS[words[0]] + _EN_UNITS[words[1]])
    return None


def _vi_below_100(words: list[str]) -> int | None:
    if not words:
        return None
    first, rest = words[0], words[1:]
    if first in _VI_TEN:  # mười, mười một, mười lăm
        if not rest:
            return 10
        if len(rest) == 1:
            unit = _VI_AFTER_TENS.get(rest[0], _VI_UNITS.get(rest[0]))
            if unit is not None and unit != 0 and rest[0] not in {"mốt", "tư"}:
                return 10 + unit
        return None
    if first not in _VI_UNITS:
        return None
    tens = _VI_UNITS[first]
    if not rest:
        return tens
    if tens >= 2 and rest[0] in _VI_TENS:  # hai mươi, hai mươi mốt
        if len(rest) == 1:
            return tens * 10
        if len(rest) == 2:
            unit = _VI_AFTER_TENS.get(rest[1], _VI_UNITS.get(rest[1]))
            return tens * 10 + unit if unit else None
        return None
    if tens >= 2 and len(rest) == 1 and rest[0] in _VI_AFTER_TENS:  # hai lăm (25), ba mốt (31)
        return tens * 10 + _VI_AFTER_TENS[rest[0]]
    return None


def _vi_run(words: list[str]) -> Decimal | None:
    """A run of Vietnamese number words, 0-999, with "phẩy"/"chấm" decimals or "rưỡi" (a half)."""
    point = next((i for i, w in enumerate(words) if w in _VI_POINT), None)
    if point is not None:
        whole_value = _vi_run(words[:point]) if point else Decimal(0)
        digits = [_VI_UNITS.get(w) for w in words[point + 1 :]]
        if whole_value is None or not digits or any(d is None for d in digits):
            return None
        return Decimal(f"{whole_value}.{''.join(str(d) for d in digits)}")
    half = Decimal(0)
    if words and words[-1] in _VI_HALF:
        words = words[:-1]
        half = Decimal(50) if words and words[-1] in _VI_HUNDRED else Decimal("0.5")
    hundreds = 0
    hundred_at = next((i for i, w in enumerate(words) if w in _VI_HUNDRED), None)
    if hundred_at is not None:
        head = words[:hundred_at]
        if head and not (len(head) == 1 and 1 <= _VI_UNITS.get(head[0], 0) <= 9):
            return None
        hundreds = 100 * (_VI_UNITS[head[0]] if head else 1)
        words = words[hundred_at + 1 :]
        if words[:1] in (["lẻ"], ["linh"]):
            words = words[1:]
            if len(words) != 1 or words[0] not in _VI_UNITS:
                return None
        if not words:
            return Decimal(hundreds) + half
    below = _vi_below_100(words)
    return None if below is None else Decimal(hundreds + below) + half


def _zh_int(text: str) -> int | None:
    if not text:
        return None
    if text in _ZH_DIGITS:
        return _ZH_DIGITS[text]
    total = 0
    if "百" in text:
        head, _, text = text.partition("百")
        if head and head not in _ZH_DIGITS:
            return None
        total = 100 * (_ZH_DIGITS[head] if head else 1)
        if not text:
            return total
        if text[0] in "零〇":
            text = text[1:]
            return total + _ZH_DIGITS[text] if len(text) == 1 and text in _ZH_DIGITS else None
        if len(text) == 1 and text in _ZH_DIGITS:  # 一百五 = 150
            return total + 10 * _ZH_DIGITS[text]
    if "十" in text:
        head, _, tail = text.partition("十")
        if (head and head not in _ZH_DIGITS) or (tail and tail not in _ZH_DIGITS):
            return None
        return total + 10 * (_ZH_DIGITS[head] if head else 1) + (_ZH_DIGITS[tail] if tail else 0)
    return None


def parse_zh_numeral(text: str) -> Decimal | None:
    """A Chinese numeral: 五, 十五, 二十三, 两, 一百, 三点五, 负三."""
    negative = text.startswith("负")
    text = text.removeprefix("负")
    whole, dot, fraction = text.partition("点")
    value = _zh_int(whole)
    if value is None:
        return None
    number = Decimal(value)
    if dot:
        if not fraction or any(ch not in _ZH_DIGITS for ch in fraction):
            return None
        number = Decimal(f"{value}.{''.join(str(_ZH_DIGITS[ch]) for ch in fraction)}")
    return -number if negative else number


def _zh_words(text: str) -> Decimal | None:
    text = _ZH_DEGREES_WORDS.sub("点", text)
    found = _ZH_NUMERAL.findall(text)
    values = {parse_zh_numeral(run) for run in found}
    if not found or None in values or len(values) != 1:
        return None
    rest = _ZH_NOISE.sub("", _ZH_NUMERAL.sub("", text))
    return values.pop() if not _SPLIT.sub("", rest) else None


def _latin_words(text: str) -> Decimal | None:
    words = [w for w in _SPLIT.split(text) if w]
    negative = False
    if words and words[0] in {"minus", "negative", *_VI_NEGATIVE}:
        negative, words = True, words[1:]
    runs: list[list[str]] = [[]]
    for word in words:
        if word in _EN_WORDS or word in _VI_WORDS:
            runs[-1].append(word)
        elif word in _NOISE_WORDS:
            if runs[-1]:
                runs.append([])
        else:
            return None
    # "give it a five": a leading "a" only counts in "a hundred".
    runs = [run[1:] if run[0] in {"a", "and"} and run[1:2] != ["hundred"] else run for run in runs if run]
    runs = [run for run in runs if run]
    values = set()
    for run in runs:
        english = all(w in _EN_WORDS for w in run)
        value = _en_run(run) if english else _vi_run(run)
        if value is None and english:
            value = _vi_run(run)  # "nam", "ba" ... are Vietnamese without tone marks
        if value is None:
            return None
        values.add(value)
    if len(values) != 1:
        return None
    value = values.pop()
    return -value if negative else value


def parse_number(text: str) -> Decimal | None:
    """The one number in the text, else None (no number, or two different numbers).

    Digits win: "my pain is about 5 today" is 5, words around digits are ignored, but an English
    number word beside them must agree ("5 or six" is None). Without digits, the text must be number
    words plus hedges and units only ("khoảng năm điểm", "五分", "about five").
    """
    plain = text.strip()
    if plain.isascii() and plain.isdigit():  # the common case, "7"
        return Decimal(plain)
    folded = unicodedata.normalize("NFKC", plain).casefold()
    if not folded:
        return None
    folded = _ZH_DEGREES.sub(r"\1.\2", folded)
    if _ASCII_DIGIT.search(folded):
        numbers = set(_digit_numbers(folded))
        for word in _SPLIT.split(folded):
            spelled = _EN_UNITS.get(word, _EN_TENS.get(word))
            if spelled is not None:
                numbers.add(Decimal(spelled))
        return numbers.pop() if len(numbers) == 1 else None
    if _CJK.search(folded):
        return _zh_words(folded)
    return _latin_words(folded)
