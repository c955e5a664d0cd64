"""An uploaded list of patients (one MRN, ID number or phone number a row) matched to patients.

Each row is looked up through the blind indexes the patients table keeps (never by decrypting): first as
an MRN, then as an ID number, then as a phone number. Rows that match nobody, or that look like a phone
number but are not a valid one, are kept with their row number and a masked form of what they said, so
staff can correct the file; the values themselves are not stored.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import Patient
from backend.models.base import among
from backend.security.crypto import current_cipher
from backend.security.identifiers import InvalidPhoneNumber, normalise_code, normalise_phone

MAX_ROWS = 200_000
LOOKUP_CHUNK = 2000
HEADERS = frozenset({"mrn", "phone", "id", "id_number", "identifier", "病案号", "手机号", "电话"})
_PHONE_LIKE = re.compile(r"^\+?[\d\s()\-.]{7,20}$")


@dataclass
class Matched:
    rows: int = 0
    patient_ids: list[int] = field(default_factory=list)  # sorted, each once
    unmatched: list[dict[str, Any]] = field(default_factory=list)  # {row, value (masked), reason}


def _mask(value: str) -> str:
    """Enough for staff to find the row in their file, not the identifier itself."""
    return value[:2] + "*" * max(len(value) - 2, 1)


def _lookup(session: Session, column: Any, indexes: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(indexes), LOOKUP_CHUNK):
        chunk = indexes[start : start + LOOKUP_CHUNK]
        for index, patient_id in session.execute(
            sa.select(column, Patient.id).where(among(session, column, chunk, sa.String)).order_by(Patient.id)
        ):
            found.setdefault(str(index), patient_id)
    return found


def rows_of(text: str) -> list[tuple[int, str]]:
    """(row number, value) for each non-empty line; the first cell of a CSV row; a header row is skipped."""
    rows: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.split(",")[0].split("\t")[0].strip().strip('"').strip()
        if not value or (not rows and value.lower() in HEADERS):
            continue
        rows.append((number, value))
    return rows


def match_list(session: Session, text: str) -> Matched:
    rows = rows_of(text)[:MAX_ROWS]
    cipher = current_cipher()
    region = get_settings().default_region
    codes = {value: normalise_code(value) for _, value in rows}
    mrn_index = {value: cipher.blind_index("mrn", code) for value, code in codes.items()}
    id_index = {value: cipher.blind_index("id_number", code) for value, code in codes.items()}
    phone_index: dict[str, str] = {}
    for _, value in rows:
        if _PHONE_LIKE.match(value):
            with contextlib.suppress(InvalidPhoneNumber):  # listed below as a bad number
                phone_index[value] = cipher.blind_index("phone", normalise_phone(value, region))
    by_mrn = _lookup(session, Patient.mrn_bidx, sorted(set(mrn_index.values())))
    by_id = _lookup(session, Patient.id_number_bidx, sorted(set(id_index.values())))
    by_phone = _lookup(session, Patient.phone_bidx, sorted(set(phone_index.values())))
    matched = Matched(rows=len(rows))
    ids: set[int] = set()
    for number, value in rows:
        patient_id = (
            by_mrn.get(mrn_index[value])
            or by_id.get(id_index[value])
            or (by_phone.get(phone_index[value]) if value in phone_index else None)
        )
        if patient_id is not None:
            ids.add(patient_id)
            continue
        bad_number = _PHONE_LIKE.match(value) is not None and value not in phone_index
        matched.unmatched.append(
            {"row": number, "value": _mask(value), "reason": "bad_number" if bad_number else "not_found"}
        )
    matched.patient_ids = sorted(ids)
    return matched
