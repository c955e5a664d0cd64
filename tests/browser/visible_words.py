"""What a reader finds wrong in a staff page's visible text: raw ids (snake_case codes, enum values), Python
reprs, and on Chinese and Vietnamese pages English words the catalogues should have translated."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache

from babel.messages.pofile import read_po

import backend.models as models
from backend.i18n import CATALOG_DIR
from bots import domain

# Words a page may show in any language: the product, channels' and standards' names, units and codes.
BRAND_WORDS = frozenset(
    {
        "CareLoop",
        "SMS",
        "WeChat",
        "WhatsApp",
        "CSV",
        "SLA",
        "ICD",
        "HL7",
        "ADT",  # HL7 message types
        "HIS",  # the hospital information system: written so in Chinese and Vietnamese hospitals too
        "NPS",  # net promoter score: a standard's name
        "JSON",
        "Redis",
        "PostgreSQL",
        "SQLite",
        "KB",
        "kB",  # jinja's filesizeformat: decimal kilobytes
        "MB",
        "GB",
        "FHIR",
        "MLLP",
        "TOTP",
        "Excel",
        "XLSX",
        "PDF",
        "ID",
        "MRN",
        "URL",
        "QR",
        "Rasa",
        "OK",
        "English",  # the language switch names each language in itself
        "Tiếng",
        "Việt",
        "UTC",
        "Esc",
        "min",  # not shown: kept out of doubt for units a catalogue leaves as they are
    }
)
SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
REPRS = (
    re.compile(r"(?<=[=(\[:,])\s?None\b|\bNone(?=[,)\]])"),  # printed None (the word "None." may be a label)
    re.compile(r"\b(?:True|False)\b"),
    re.compile(r"object at 0x"),
    re.compile(r"\b[A-Z][A-Za-z]+\.[A-Z][A-Z_]{2,}\b"),  # TaskKind.HANDOFF
    re.compile(r"[{\[]'"),  # a dict or list printed
    re.compile(r"\bdatetime\.|\bDecimal\("),
)
ZONE = re.compile(r"\b[A-Z][a-z]+/[A-Za-z_]+\b")  # the hospital's zone named beside times
WORD = re.compile(r"[A-Za-zÀ-ỹ][A-Za-zÀ-ỹ0-9]*")


@lru_cache(maxsize=1)
def enum_values() -> frozenset[str]:
    """Every value of the closed sets pages are built from (task kinds, statuses, channels, roles...)."""
    found: set[str] = set()
    for module in (models, domain):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, StrEnum) and value is not StrEnum:
                found.update(str(member.value) for member in value)
    return frozenset(v for v in found if re.fullmatch(r"[a-z][a-z0-9_]*", v))


@lru_cache(maxsize=1)
def _catalogue_words() -> tuple[frozenset[str], frozenset[str]]:
    """English words of the staff UI (the catalogues' source texts) and the Vietnamese words of its
    translations: an English word on a Vietnamese page that is not also Vietnamese was left untranslated."""
    english: set[str] = set()
    vietnamese: set[str] = set()
    with (CATALOG_DIR / "vi.po").open("rb") as po:
        for message in read_po(po):
            if not message.id:
                continue
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            english.update(w.lower() for text in ids for w in WORD.findall(str(text)))
            vietnamese.update(w.lower() for text in strings for w in WORD.findall(str(text)))
    return frozenset(english), frozenset(vietnamese)


def leaks(text: str, lang: str, data: Iterable[str]) -> list[str]:
    """What is wrong in a page's visible `text` read in `lang`; `data` are the records' own words (names,
    diagnoses, what patients wrote), which are shown as they were entered."""
    for value in sorted((d for d in data if d), key=len, reverse=True):
        text = text.replace(value, " ")
    text = ZONE.sub(" ", text)
    found = [f"repr {m.group(0)!r}" for pattern in REPRS for m in pattern.finditer(text)]
    found += [f"id {m.group(0)!r}" for m in SNAKE.finditer(text)]
    if lang == "en":
        return found
    words = [w for w in WORD.findall(text) if w not in BRAND_WORDS]
    codes = enum_values()
    english, vietnamese = _catalogue_words()
    # "bot" and a few other loanwords are Vietnamese too: the catalogues' translations say which
    found += [f"code {w!r}" for w in words if w in codes and not (lang == "vi" and w.lower() in vietnamese)]
    if lang.startswith("zh"):
        found += [f"English {w!r}" for w in words if w.isascii() and len(w) > 1 and w not in codes]
    else:
        found += [
            f"English {w!r}"
            for w in words
            if len(w) > 2 and w.lower() in english and w.lower() not in vietnamese and w not in codes
        ]
    return sorted(set(found))
