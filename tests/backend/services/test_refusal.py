"""One refusal family: every staff refusal is an ActionRefused whose reason code the pages translate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from backend.services.booking import BookingRefused
from backend.services.booking_rules import Refusal
from backend.services.case_files import AttachmentRefused
from backend.services.refusal import ActionRefused, NotSent, Reason
from backend.services.spot_checks import SpotCheckRefused

BACKEND = Path(__file__).resolve().parents[3] / "backend"
# Shown where no staff page translates a code: the patient's rating page says it in its own words, and
# the other two answer a form whose conversation or task vanished under it.
# NO_SUCH_LANGUAGE: only a forged language switch gets it, answered as translated plain text by the route
NOT_ON_A_STAFF_PAGE = {
    Reason.ALREADY_RATED,
    Reason.NO_SUCH_CONVERSATION,
    Reason.NO_TASK,
    Reason.NO_SUCH_LANGUAGE,
}


def _translated_codes() -> dict[str, str]:
    """Every `"code": _("text")` entry of the staff templates' reason maps, code -> English text."""
    found: dict[str, str] = {}
    for template in (BACKEND / "web" / "templates" / "staff").rglob("*.html"):
        for code, text in re.findall(r'"([a-z_:]+)": _\("((?:[^"\\]|\\.)*)"\)', template.read_text("utf-8")):
            found.setdefault(code, text)
    return found


@pytest.mark.parametrize(
    ("refusal", "code"),
    [
        (SpotCheckRefused(Reason.NOT_SUPERVISOR), "not_supervisor"),
        (AttachmentRefused(Reason.FORBIDDEN_TYPE), "forbidden_type"),
        (BookingRefused(Refusal.SLOT_FULL), "slot_full"),
        (NotSent("excluded:deceased"), "excluded:deceased"),
    ],
)
def test_each_refusal_is_an_action_refused_carrying_its_code(refusal: ActionRefused, code: str) -> None:
    assert isinstance(refusal, ActionRefused)
    assert refusal.reason == code and str(refusal) == code


def test_every_reason_a_staff_page_shows_is_translated_in_every_catalogue() -> None:
    translated = _translated_codes()
    missing = sorted(r.value for r in Reason if r not in NOT_ON_A_STAFF_PAGE and r.value not in translated)
    assert missing == []
    for po_path in sorted((BACKEND / "i18n").glob("*.po")):
        with po_path.open("rb") as po:
            catalog = read_po(po)
        untranslated = []
        for reason in Reason:
            if reason.value in translated:
                message = catalog.get(translated[reason.value].replace('\\"', '"'))
                if message is None or not message.string:
                    untranslated.append(reason.value)
        assert untranslated == [], po_path.name
