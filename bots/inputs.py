"""Typed answers to input steps (phone, birth date, MRN, yes/no, number, date, text): a JSON value or None."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

from bots.flows import InputKind
from nlu.dates import parse_date
from nlu.numbers import parse_number
from nlu.parsing import parse_yes_no

DEFAULT_TEXT_LIMIT = 2000
_PHONE_JUNK = re.compile(r"[\s\-().·/]")
_PHONE = re.compile(r"\+?\d{6,15}")
_MRN = re.compile(r"[A-Z0-9][A-Z0-9\-]{2,31}")
_EIGHT_DIGITS = re.compile(r"(\d{4})(\d{2})(\d{2})")
OLDEST_YEAR = 1900


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def parse_phone(text: str) -> str | None:
    """Digits (and a leading +) of a phone number as typed; the backend checks it is a real number."""
    compact = _PHONE_JUNK.sub("", _fold(text))
    return compact if _PHONE.fullmatch(compact) else None


def parse_mrn(text: str) -> str | None:
    compact = _fold(text).upper().replace(" ", "")
    return compact if _MRN.fullmatch(compact) and any(c.isdigit() for c in compact) else None


def parse_birth_date(text: str, lang: str, today: date) -> date | None:
    """A date of birth: in the past and not before 1900. 19800131 (eight digits) is read as Y-M-D."""
    folded = _fold(text)
    digits = _EIGHT_DIGITS.fullmatch(folded)
    found: date | None
    if digits:
        try:
            found = date(int(digits[1]), int(digits[2]), int(digits[3]))
        except ValueError:
            return None
    else:
        found = parse_date(folded, lang, today)
    if found is None or found > today or found.year < OLDEST_YEAR:
        return None
    return found


def parse_input(kind: InputKind, text: str, lang: str, today: date, max_length: int | None = None) -> Any:
    """The JSON value of a typed answer (dates as ISO strings, numbers as strings), or None."""
    if kind is InputKind.PHONE:
        return parse_phone(text)
    if kind is InputKind.MRN:
        return parse_mrn(text)
    if kind is InputKind.BIRTH_DATE:
        birth = parse_birth_date(text, lang, today)
        return birth.isoformat() if birth else None
    if kind is InputKind.DATE:
        found = parse_date(_fold(text), lang, today)
        return found.isoformat() if found else None
    if kind is InputKind.YES_NO:
        return parse_yes_no(text)
    if kind is InputKind.NUMBER:
        number = parse_number(text)
        return str(number) if number is not None else None
    stripped = text.strip()
    if not stripped or len(stripped) > (max_length or DEFAULT_TEXT_LIMIT):
        return None
    return stripped
