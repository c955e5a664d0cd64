"""Why a reply was not accepted as an answer: the reasons the re-prompts name, the same on every channel."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    EMPTY = "empty"
    NOT_UNDERSTOOD = "not_understood"
    AMBIGUOUS = "ambiguous"
    ONE_ONLY = "one_only"  # several options for a single-choice item
    UNKNOWN_OPTION = "unknown_option"
    NOT_A_NUMBER = "not_a_number"
    NOT_WHOLE = "not_whole"
    OUT_OF_RANGE = "out_of_range"
    NOT_A_DATE = "not_a_date"
    TOO_LONG = "too_long"
    TOO_MANY_PARTS = "too_many_parts"  # more parts than a multi-blank item has blanks
