"""Normalising identifiers (phones, emails, MRNs, openids, names) to the one form encrypted and indexed."""

from __future__ import annotations

import re
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


class InvalidEmail(ValueError):
    """The text is not an email address we can send to."""


_EMAIL = re.compile(
    r"^[!#-'*+\-./0-9=?^_`a-z{|}~]{1,64}@(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$"
)


def normalise_email(raw: str) -> str:
    """Trimmed and lower-cased ('Lan.Nguyen@Example.VN ' -> 'lan.nguyen@example.vn'), a Chinese or
    Vietnamese domain in its ASCII (IDNA) form: local parts are case-sensitive in theory, but no mailbox
    provider a patient uses treats them so, and one form is what the blind index needs. Refuses what is
    not one plain ASCII address (no display names, quoted or non-ASCII local parts, IP literals): a typo
    caught here costs nothing, a bounce costs a follow-up."""
    text = unicodedata.normalize("NFKC", raw).strip().lower()
    local, at, domain = text.rpartition("@")
    try:
        text = f"{local}{at}{domain.encode('idna').decode('ascii')}"
    except UnicodeError as exc:
        raise InvalidEmail("not an email address") from exc
    if len(text) > 254 or not _EMAIL.match(text) or ".." in text or local.startswith("."):
        raise InvalidEmail("not an email address")
    return text


def mask_email(address: str) -> str:
    """What staff lists may show: 'l***@example.vn'."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


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
