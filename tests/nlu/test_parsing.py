"""The deterministic parsers: text normalised for matching, yes and no in three languages."""

from __future__ import annotations

import pytest

from nlu.parsing import normalise, parse_yes_no


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
