"""The organisation an admin maintains: departments, wards and clinicians (doctors and nurses), each with
names in zh-CN, vi and en and the hospital's own code (what HL7 messages carry, matched in
backend/integration/codes.py). Create, edit, deactivate, reactivate, list with filters; each audited.

A code is unique within its kind; one already used is refused naming who holds it. Deactivating keeps
the row (visits and tasks point at it) and takes it out of choices for new work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import Clinician, ClinicianKind, Department, Ward
from backend.models.org import ORG_CODE
from backend.services import audit
from backend.services.message_log import InvalidFilter, parse_id, text_value
from backend.services.refusal import ActionRefused, Reason
from bots.domain import LANGUAGES

MAX_NAME = 200
Entry = Department | Ward | Clinician


class OrgKind(StrEnum):
    DEPARTMENT = "department"
    WARD = "ward"
    CLINICIAN = "clinician"

    @property
    def model(self) -> type[Department] | type[Ward] | type[Clinician]:
        if self is OrgKind.DEPARTMENT:
            return Department
        return Ward if self is OrgKind.WARD else Clinician


class CodeInUse(ActionRefused):
    """The code is taken within its kind; `holder` names the entry holding it."""

    def __init__(self, holder: str) -> None:
        super().__init__(Reason.CODE_IN_USE)
        self.holder = holder


@dataclass(frozen=True)
class OrgForm:
    code: str | None  # required for departments and wards
    names: dict[str, str]  # language -> name, the languages given
    department_id: int | None = None  # wards and clinicians
    clinician_kind: ClinicianKind | None = None
    title: str | None = None

    @property
    def name(self) -> str:
        """The default name (used where no per-language name fits): English, else the first given."""
        return self.names.get("en") or next(iter(self.names.values()))


def parse_org_form(kind: OrgKind, values: Mapping[str, str]) -> OrgForm:
    """Raises ActionRefused for the first value that does not fit."""
    code = values.get("code", "").strip()
    if code and not ORG_CODE.fullmatch(code):
        raise ActionRefused(Reason.CODE_INVALID)
    if not code and kind is not OrgKind.CLINICIAN:
        raise ActionRefused(Reason.CODE_INVALID)
    names = {}
    for lang in LANGUAGES:
        text = values.get(f"name_{lang}", "").strip()
        if len(text) > MAX_NAME:
            raise ActionRefused(Reason.NAME_REQUIRED)
        if text:
            names[lang] = text
    if not names:
        raise ActionRefused(Reason.NAME_REQUIRED)
    department_id = None
    clinician_kind = None
    title = None
    if kind is not OrgKind.DEPARTMENT:
        text = values.get("department", "").strip()
        if not text.isascii() or not text.isdigit() or len(text) > 9:
            raise ActionRefused(Reason.NO_SUCH_DEPARTMENT)
        department_id = int(text)
    if kind is OrgKind.CLINICIAN:
        try:
            clinician_kind = ClinicianKind(values.get("clinician_kind", ""))
        except ValueError as exc:
            raise ActionRefused(Reason.NO_SUCH_CHOICE) from exc
        title = values.get("title", "").strip()[:100] or None
    return OrgForm(code or None, names, department_id, clinician_kind, title)


def _holder(session: Session, kind: OrgKind, code: str, except_id: int | None) -> str | None:
    model = kind.model
    found = cast("Entry | None", session.scalars(sa.select(model).where(model.code == code)).first())
    if found is None or found.id == except_id:
        return None
    return f"{found.code} {found.name}"


def _apply(session: Session, kind: OrgKind, entry: Entry, form: OrgForm) -> None:
    if form.code is not None:
        holder = _holder(session, kind, form.code, entry.id)
        if holder is not None:
            raise CodeInUse(holder)
    if form.department_id is not None:
        department = session.get(Department, form.department_id)
        if department is None:
            raise ActionRefused(Reason.NO_SUCH_DEPARTMENT)
    if isinstance(entry, Department | Ward):
        assert form.code is not None
        entry.code = form.code
    if isinstance(entry, Ward | Clinician):
        assert form.department_id is not None
        entry.department_id = form.department_id
    if isinstance(entry, Clinician):
        assert form.clinician_kind is not None
        entry.code = form.code
        entry.kind = form.clinician_kind
        entry.title = form.title
    entry.name = form.name
    entry.names = dict(form.names)


def do_create(
    session: Session, kind: OrgKind, form: OrgForm, *, by: int | None, ip: str | None = None
) -> Entry:
    entry: Entry
    if kind is OrgKind.DEPARTMENT:
        entry = Department(code="", name="", names={})
    elif kind is OrgKind.WARD:
        entry = Ward(code="", name="", names={}, department_id=0)
    else:
        entry = Clinician(kind=ClinicianKind.DOCTOR, name="", names={}, department_id=0)
    _apply(session, kind, entry, form)
    session.add(entry)
    session.flush()
    audit.record(session, f"org.{kind.value}_create", staff_id=by, subject=(kind.value, entry.id), ip=ip)
    return entry


def find(session: Session, kind: OrgKind, entry_id: int) -> Entry | None:
    return cast("Entry | None", session.get(kind.model, entry_id))


def do_update(
    session: Session, kind: OrgKind, entry: Entry, form: OrgForm, *, by: int | None, ip: str | None = None
) -> None:
    before = {"code": entry.code, "names": dict(entry.names)}
    _apply(session, kind, entry, form)
    changed = sorted(k for k, v in before.items() if v != {"code": entry.code, "names": entry.names}[k])
    audit.record(
        session,
        f"org.{kind.value}_update",
        staff_id=by,
        subject=(kind.value, entry.id),
        ip=ip,
        changed=changed,
    )


def do_set_active(
    session: Session, kind: OrgKind, entry: Entry, *, active: bool, by: int, ip: str | None = None
) -> None:
    entry.active = active
    action = f"org.{kind.value}_{'reactivate' if active else 'deactivate'}"
    audit.record(session, action, staff_id=by, subject=(kind.value, entry.id), ip=ip)


# --- the list ------------------------------------------------------------------------------------

LIST_FIELDS = ("active", "department", "q")


@dataclass(frozen=True)
class OrgFilters:
    active: bool | None = None
    department_id: int | None = None  # wards and clinicians
    text: str = ""  # part of a code or of a name in any language

    def audit_detail(self) -> dict[str, Any]:
        return {"active": self.active, "department": self.department_id, "text": bool(self.text)}


def parse_org_filters(values: Mapping[str, str]) -> OrgFilters:
    active_text = text_value(values, "active")
    if active_text not in ("", "yes", "no"):
        raise InvalidFilter("active")
    return OrgFilters(
        active=None if not active_text else active_text == "yes",
        department_id=parse_id(values, "department"),
        text=text_value(values, "q"),
    )


def org_list(session: Session, kind: OrgKind, filters: OrgFilters, limit: int = 5000) -> list[Entry]:
    model = kind.model
    query = sa.select(model)
    if filters.active is not None:
        query = query.where(model.active.is_(filters.active))
    if filters.department_id is not None and kind is not OrgKind.DEPARTMENT:
        query = query.where(model.department_id == filters.department_id)  # type: ignore[union-attr]
    order = model.code if kind is not OrgKind.CLINICIAN else model.name
    rows: list[Entry] = list(session.scalars(query.order_by(order, model.id).limit(limit)))
    if filters.text:
        # matched in Python: the names are JSON (escaped non-ASCII on PostgreSQL), and these lists are
        # hundreds of rows, not millions
        wanted = filters.text.casefold()
        rows = [
            row
            for row in rows
            if any(wanted in (text or "").casefold() for text in (row.code, row.name, *row.names.values()))
        ]
    return rows


def departments(session: Session) -> list[Department]:
    return list(session.scalars(sa.select(Department).order_by(Department.code)))


def department_choices(session: Session, keep: set[int]) -> list[Department]:
    """Departments a form offers: the active ones, and any inactive one the edited item already has
    (so saving it does not silently drop that)."""
    return [d for d in departments(session) if d.active or d.id in keep]
