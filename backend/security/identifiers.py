"""Normalising identifiers (phones, MRNs, openids, names) to the one form encrypted and blind-indexed."""

from __future__ import annotations

import unicodedata

import phonenumbers


class InvalidPhoneNumber(ValueError):
    """The text is not a callable phone number."""


def normalise_phone(raw: str, default_region: str) -> str:
    """E.164 form, e.g. '138 0013 8000' in CN -> '+8613800138000'."""
    text = unicodedata.normalize("NFKC", raw).strip()
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber("not a phone number") from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhoneNumber("not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_code(raw: str) -> str:
    """MRNs, ID numbers and channel ids: width-folded, trimmed, upper-case, no inner spaces."""
    return "".join(unicodedata.normalize("NFKC", raw).split()).upper()


def mask_phone(e164: str) -> str:
    """What staff lists and logs may show: '+86138****8000'."""
    if len(e164) < 8:
        return "*" * len(e164)
    return f"{e164[:6]}****{e164[-4:]}"


def _is_han(char: str) -> bool:
    return "CJK" in unicodedata.name(char, "") or "\u3400" <= char <= "\u9fff"


def normalise_name(raw: str) -> str:
    """Width- and case-folded, accents dropped (Vietnamese 'Nguyễn' = 'nguyen'), one space between words."""
    text = unicodedata.normalize("NFKC", raw).casefold().replace("đ", "d")
    stripped = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    words = "".join(c if (c.isalnum() or c.isspace()) else " " for c in stripped).split()
    return " ".join(words)


def name_tokens(raw: str) -> set[str]:
    """What a name is indexed (and searched) by: the whole normalised name ('f:'), each word ('w:'), and
    for Chinese characters each pair of neighbours ('b:'): '王小明' gives 王小 and 小明, since Chinese names
    are written without spaces. Single characters are not indexed: a surname alone is too common, and its
    index would only say how many patients share it."""
    normalised = normalise_name(raw)
    if not normalised:
        return set()
    tokens = {"f:" + normalised.replace(" ", "")}
    for word in normalised.split(" "):
        run = ""
        for char in [*word, ""]:
            if char and _is_han(char):
                run += char
                continue
            tokens.update("b:" + run[i : i + 2] for i in range(len(run) - 1))
            run = ""
        latin = "".join(c for c in word if not _is_han(c))
        if latin:
            tokens.add("w:" + latin)
    return tokens
