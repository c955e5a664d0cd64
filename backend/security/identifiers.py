"""Normalising identifiers (phones, MRNs, openids) to the one form that is encrypted and blind-indexed."""

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
