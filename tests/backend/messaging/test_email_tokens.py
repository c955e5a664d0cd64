"""The tokens in email addresses and links, and the address normalisation they and the blind index rely on."""

from __future__ import annotations

import pytest

from backend.app.settings import get_settings
from backend.messaging.email_tokens import (
    item_from_message_id,
    item_token,
    read_item_token,
    read_unsubscribe_token,
    unsubscribe_token,
    unsubscribe_url,
)
from backend.messaging.links import LinkInvalid
from backend.security.identifiers import InvalidEmail, mask_email, normalise_email
from bots.domain import ConsentPurpose


def test_an_item_token_is_the_same_every_time_fits_an_address_and_reads_back(database_url: str) -> None:
    settings = get_settings()
    token = item_token(settings, 123456)
    assert token == item_token(settings, 123456)  # a resend carries the same Message-ID
    assert token.startswith("123456-") and len(token) == 27
    assert set(token) <= set("0123456789abcdef-")  # safe in a local part, even one an MTA lower-cases
    assert read_item_token(settings, token) == 123456
    assert read_item_token(settings, token.upper()) == 123456
    assert item_from_message_id(settings, f"<careloop.{token}@care.example.vn>") == 123456


@pytest.mark.parametrize(
    "forged",
    ["123457-{mac}", "123456-{mac}0", "123456-00000000000000000000", "123456", "x-{mac}", "-{mac}", ""],
)
def test_a_changed_item_token_is_refused(database_url: str, forged: str) -> None:
    settings = get_settings()
    mac = item_token(settings, 123456).split("-")[1]
    with pytest.raises(LinkInvalid):
        read_item_token(settings, forged.format(mac=mac))


def test_a_message_id_not_ours_is_refused(database_url: str) -> None:
    settings = get_settings()
    token = item_token(settings, 5)
    for message_id in (f"<{token}@care.example.vn>", "<199407072116.RAA14128@CS.UTK.EDU>", ""):
        with pytest.raises(LinkInvalid):
            item_from_message_id(settings, message_id)


def test_an_unsubscribe_token_names_the_patient_and_purpose_and_nothing_else_reads(database_url: str) -> None:
    settings = get_settings()
    token = unsubscribe_token(settings, 42, ConsentPurpose.RESEARCH)
    assert read_unsubscribe_token(settings, token) == (42, ConsentPurpose.RESEARCH)
    assert unsubscribe_url(settings, 42, ConsentPurpose.RESEARCH) == f"{settings.public_url}/m/u/{token}"
    mac = token.rsplit("-", 1)[1]
    for forged in (
        f"43-research-{mac}",
        f"42-care-{mac}",
        f"42-marketing-{mac}",
        "42-research",
        "42-bogus-" + mac,
    ):
        with pytest.raises(LinkInvalid):
            read_unsubscribe_token(settings, forged)
    # an item token is not an unsubscribe token, even for the same number
    with pytest.raises(LinkInvalid):
        read_unsubscribe_token(settings, item_token(settings, 42))


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        (" Lan.Nguyen@Example.VN ", "lan.nguyen@example.vn"),
        ("user+tag@mail.example.org", "user+tag@mail.example.org"),
        ("ｌａｎ@example.vn", "lan@example.vn"),  # full-width letters typed on a Chinese keyboard
        ("lan@bệnhviện.vn", "lan@xn--bnhvin-ik8be.vn"),
        ("wang@例子.中国", "wang@xn--fsqu00a.xn--fiqs8s"),
    ],
)
def test_addresses_are_normalised(raw: str, stored: str) -> None:
    assert normalise_email(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "lan",
        "lan@",
        "@example.vn",
        "lan@example",
        "lan @example.vn",
        "lan@@example.vn",
        "a..b@example.vn",
        ".a@example.vn",
        "lan@example..vn",
        '"lan"@example.vn',
        "Lan <lan@example.vn>",
        "王@example.vn",
        "lan@[127.0.0.1]",
        "a" * 65 + "@example.vn",
    ],
)
def test_what_is_not_one_plain_address_is_refused(raw: str) -> None:
    with pytest.raises(InvalidEmail):
        normalise_email(raw)


def test_masked_for_lists() -> None:
    assert mask_email("lan.nguyen@example.vn") == "l***@example.vn"
