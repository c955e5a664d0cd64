"""Phone and code normalisation before encryption and indexing."""

from __future__ import annotations

import pytest

from backend.security.identifiers import InvalidPhoneNumber, mask_phone, normalise_code, normalise_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("138 0013 8000", "CN", "+8613800138000"),
        ("+86 138-0013-8000", "VN", "+8613800138000"),
        ("１３８００１３８０００", "CN", "+8613800138000"),
        ("0912 345 678", "VN", "+84912345678"),
        ("+44 7700 900123", "CN", "+447700900123"),
    ],
)
def test_phones_become_e164(raw: str, region: str, expected: str) -> None:
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "hello", "12", "+86 1"])
def test_non_phones_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalise_phone(raw, "CN")


def test_codes_fold_width_case_and_spaces() -> None:
    assert normalise_code(" ｍｒｎ 100 001 ") == "MRN100001"


def test_masked_phone_hides_the_middle() -> None:
    assert mask_phone("+8613800138000") == "+86138****8000"
