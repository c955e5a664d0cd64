"""The deterministic answer parser: option numbers and labels, yes and no in three languages."""

from __future__ import annotations

import pytest

from nlu.parsing import normalise, parse_option, parse_yes_no

LABELS = ["Yes, I agree", "No, thank you"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 0),
        ("2", 1),
        (" 1 ", 0),
        ("１", 0),
        ("2。", 1),
        ("yes, i agree", 0),
        ("NO, THANK YOU!", 1),
        ("3", None),
        ("0", None),
        ("-1", None),
        ("", None),
        ("   ", None),
        ("yes please agree", None),
    ],
)
def test_parse_option(text: str, expected: int | None) -> None:
    assert parse_option(text, LABELS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", True),
        ("Y", True),
        ("OK!", True),
        ("是的", True),
        ("好的。", True),
        ("同意", True),
        ("đồng ý", True),
        ("Vâng", True),
        ("no", False),
        ("不", False),
        ("不同意", False),
        ("không", False),
        ("KHÔNG!", False),
        ("maybe", None),
        ("yes no", None),
        ("", None),
        ("是不是", None),
    ],
)
def test_parse_yes_no(text: str, expected: bool | None) -> None:
    assert parse_yes_no(text) is expected


def test_normalise_folds_width_case_and_punctuation() -> None:
    assert normalise("  ＹＥＳ！！ ") == "yes"
    assert normalise("Đồng Ý.") == "đồng ý"
