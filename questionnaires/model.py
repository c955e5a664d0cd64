"""The questionnaire model: items, options, branching conditions, scores and finding rules. Pure data."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

LANGS = ("zh-CN", "vi", "en")

# One language -> text mapping; every authored text carries all three languages.
Texts = Mapping[str, str]
# What an accepted answer is, by item type: option code, list of codes, int, Decimal, date, text,
# or blank id -> text for multi-blank items.
AnswerValue = str | list[str] | int | Decimal | date | dict[str, str]


class ItemType(StrEnum):
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    DROPDOWN = "dropdown"
    STAR_RATING = "star_rating"  # 1..max stars
    SCALE = "scale"  # numeric scale min..max, e.g. pain 0-10, NPS 0-10
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    SHORT_TEXT = "short_text"
    LONG_TEXT = "long_text"
    MULTI_BLANK = "multi_blank"  # several labelled blanks in one item
    DISPLAY = "display"  # text only, no answer
    GROUP = "group"  # holds other items

    @property
    def has_options(self) -> bool:
        return self in {ItemType.SINGLE_CHOICE, ItemType.MULTIPLE_CHOICE, ItemType.DROPDOWN}

    @property
    def is_numeric(self) -> bool:
        return self in {ItemType.STAR_RATING, ItemType.SCALE, ItemType.INTEGER, ItemType.DECIMAL}

    @property
    def answerable(self) -> bool:
        return self not in {ItemType.DISPLAY, ItemType.GROUP}


class Severity(StrEnum):
    """How urgent a finding is; the staff task priority of the same name (emergency: 15 minutes, urgent:
    1 hour), least urgent first."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"
    EMERGENCY = "emergency"  # e.g. thoughts of self-harm with intent to act: contact the patient now


class Operator(StrEnum):
    EQ = "="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EXISTS = "exists"  # answered (value true) or not answered (value false)
    CONTAINS = "contains"  # multiple choice includes a code


@dataclass(frozen=True, slots=True)
class Coding:
    """A code from a standard code system (LOINC), so that other systems read the same meaning."""

    system: str
    code: str
    display: str | None = None


@dataclass(frozen=True, slots=True)
class Option:
    code: str
    text: Texts
    score: int | None = None  # ordinal value for scoring
    # extra spoken/typed synonyms per language
    words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    coding: Coding | None = None  # the standard answer code (LOINC LA...) when known


@dataclass(frozen=True, slots=True)
class Blank:
    id: str
    text: Texts


@dataclass(frozen=True, slots=True)
class Condition:
    """Refers to an item's answer (`item`) or to a computed score (`score`)."""

    operator: Operator
    value: str | int | Decimal | bool | None
    item: str | None = None
    score: str | None = None


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    type: ItemType
    text: Texts
    required: bool = False
    statistics: bool = True  # counted in statistics
    hint: Texts | None = None
    options: tuple[Option, ...] = ()
    minimum: Decimal | None = None  # numeric range, or the scale's ends; star rating 1..maximum
    maximum: Decimal | None = None
    unit: Texts | None = None
    blanks: tuple[Blank, ...] = ()
    items: tuple[Item, ...] = ()  # for groups
    enable_when: tuple[Condition, ...] = ()
    enable_any: bool = False  # any condition enables (default: all)
    dimension: str | None = None  # satisfaction dimension for statistics (environment, attitude, ...)
    min_label: Texts | None = None  # what the ends of a scale mean ("no pain", "worst pain")
    max_label: Texts | None = None
    codes: tuple[Coding, ...] = ()  # what the question asks, in standard codes (LOINC)

    def option(self, code: str) -> Option | None:
        return next((o for o in self.options if o.code == code), None)


@dataclass(frozen=True, slots=True)
class Band:
    code: str
    minimum: int  # inclusive
    maximum: int  # inclusive
    text: Texts
    severity: Severity | None = None  # a band can itself raise a finding


@dataclass(frozen=True, slots=True)
class Score:
    id: str
    items: tuple[str, ...]  # summed option scores / numeric values
    text: Texts
    bands: tuple[Band, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    when: tuple[Condition, ...]  # all must hold
    severity: Severity
    text: Texts  # what staff read on the task


class Kind(StrEnum):
    FOLLOW_UP = "follow_up"
    SATISFACTION = "satisfaction"
    SCREENING = "screening"
    STAFF = "staff"


@dataclass(frozen=True, slots=True)
class Questionnaire:
    id: str
    version: int
    kind: Kind
    title: Texts
    items: tuple[Item, ...]
    scores: tuple[Score, ...] = ()
    rules: tuple[Rule, ...] = ()
    intro: Texts | None = None
    outro: Texts | None = None
    codes: tuple[Coding, ...] = ()  # the instrument, in standard codes (LOINC panel)
    # The languages its texts are really written in. An imported single-language form has the others
    # marked missing: their texts stand in from a written language until someone translates them.
    languages: tuple[str, ...] = LANGS

    @property
    def missing_languages(self) -> tuple[str, ...]:
        return tuple(lang for lang in LANGS if lang not in self.languages)

    def language_for(self, wanted: str) -> str:
        """`wanted` if the questionnaire is written in it, else its first written language."""
        return wanted if wanted in self.languages else self.languages[0]

    def walk(self) -> Iterator[Item]:
        """Every item, depth first, groups before their children."""

        def visit(items: tuple[Item, ...]) -> Iterator[Item]:
            for item in items:
                yield item
                yield from visit(item.items)

        return visit(self.items)

    def answerable(self) -> list[Item]:
        return [item for item in self.walk() if item.type.answerable]

    def item(self, item_id: str) -> Item:
        for item in self.walk():
            if item.id == item_id:
                return item
        raise KeyError(item_id)
