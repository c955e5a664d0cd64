"""The organisation: departments, wards and clinicians with names per language and the hospital's codes;
a code already used is refused naming its holder; deactivating keeps the row; lists filter."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.admin import org
from backend.admin.org import CodeInUse, OrgKind, parse_org_form
from backend.models import AuditEvent, Clinician, ClinicianKind, Department
from backend.services.refusal import ActionRefused, Reason
from tests import factories

NAMES = {"name_zh-CN": "心内科", "name_vi": "Khoa Tim mạch", "name_en": "Cardiology"}


def test_forms_per_kind() -> None:
    department = parse_org_form(OrgKind.DEPARTMENT, {"code": "CARD", **NAMES})
    assert (
        department.code == "CARD"
        and department.name == "Cardiology"
        and department.names["zh-CN"] == "心内科"
    )
    ward = parse_org_form(OrgKind.WARD, {"code": "W1", "name_vi": "Khu 1", "department": "4"})
    assert (ward.department_id, ward.name) == (4, "Khu 1")
    doctor = parse_org_form(
        OrgKind.CLINICIAN,
        {"name_zh-CN": "王医生", "department": "4", "clinician_kind": "doctor", "title": "主任"},
    )
    assert doctor.code is None and doctor.clinician_kind is ClinicianKind.DOCTOR and doctor.title == "主任"


@pytest.mark.parametrize(
    ("kind", "values", "reason"),
    [
        (OrgKind.DEPARTMENT, {**NAMES}, Reason.CODE_INVALID),
        (OrgKind.DEPARTMENT, {"code": "C D", **NAMES}, Reason.CODE_INVALID),
        (OrgKind.DEPARTMENT, {"code": "X" * 33, **NAMES}, Reason.CODE_INVALID),
        (OrgKind.DEPARTMENT, {"code": "CARD"}, Reason.NAME_REQUIRED),
        (OrgKind.DEPARTMENT, {"code": "CARD", "name_en": "x" * 201}, Reason.NAME_REQUIRED),
        (OrgKind.WARD, {"code": "W1", **NAMES}, Reason.NO_SUCH_DEPARTMENT),
        (OrgKind.WARD, {"code": "W1", "department": "abc", **NAMES}, Reason.NO_SUCH_DEPARTMENT),
        (OrgKind.CLINICIAN, {"department": "1", **NAMES}, Reason.NO_SUCH_CHOICE),
    ],
)
def test_bad_forms_are_refused(kind: OrgKind, values: dict[str, str], reason: Reason) -> None:
    with pytest.raises(ActionRefused) as refused:
        parse_org_form(kind, values)
    assert refused.value.reason is reason


def test_a_code_already_used_is_refused_naming_its_holder(db: Session) -> None:
    root = factories.staff(db, username="root")
    cardio = org.do_create(
        db, OrgKind.DEPARTMENT, parse_org_form(OrgKind.DEPARTMENT, {"code": "CARD", **NAMES}), by=root.id
    )
    with pytest.raises(CodeInUse) as clash:
        org.do_create(
            db,
            OrgKind.DEPARTMENT,
            parse_org_form(OrgKind.DEPARTMENT, {"code": "CARD", "name_en": "Other"}),
            by=root.id,
        )
    assert clash.value.reason is Reason.CODE_IN_USE and clash.value.holder == "CARD Cardiology"
    # the same code in another kind is fine: codes are per table
    ward_form = parse_org_form(
        OrgKind.WARD, {"code": "CARD", "name_en": "Cardiac ward", "department": str(cardio.id)}
    )
    ward = org.do_create(db, OrgKind.WARD, ward_form, by=root.id)
    # keeping its own code is not a clash
    org.do_update(
        db,
        OrgKind.DEPARTMENT,
        cardio,
        parse_org_form(OrgKind.DEPARTMENT, {"code": "CARD", "name_en": "Heart"}),
        by=root.id,
    )
    assert cardio.name == "Heart" and cardio.names == {"en": "Heart"}
    doctor_form = {
        "code": "D001",
        "name_en": "Dr Wang",
        "department": str(cardio.id),
        "clinician_kind": "doctor",
    }
    org.do_create(db, OrgKind.CLINICIAN, parse_org_form(OrgKind.CLINICIAN, doctor_form), by=root.id)
    with pytest.raises(CodeInUse):
        org.do_create(
            db,
            OrgKind.CLINICIAN,
            parse_org_form(OrgKind.CLINICIAN, {**doctor_form, "name_en": "Dr Li"}),
            by=root.id,
        )
    # clinicians without a code do not clash with each other
    for name in ("Nurse A", "Nurse B"):
        form = {"name_en": name, "department": str(cardio.id), "clinician_kind": "nurse"}
        org.do_create(db, OrgKind.CLINICIAN, parse_org_form(OrgKind.CLINICIAN, form), by=root.id)
    db.commit()
    assert db.scalar(sa.select(sa.func.count()).select_from(Clinician)) == 3
    assert ward.department_id == cardio.id
    actions = db.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[:3] == ["org.department_create", "org.ward_create", "org.department_update"]


def test_an_unknown_department_is_refused(db: Session) -> None:
    root = factories.staff(db, username="root")
    with pytest.raises(ActionRefused) as refused:
        org.do_create(
            db,
            OrgKind.WARD,
            parse_org_form(OrgKind.WARD, {"code": "W", "name_en": "W", "department": "999"}),
            by=root.id,
        )
    assert refused.value.reason is Reason.NO_SUCH_DEPARTMENT


def test_deactivating_keeps_the_row_and_the_list_filters(db: Session) -> None:
    root = factories.staff(db, username="root")
    cardio = factories.department(db, code="CARD")
    cardio.names = {"zh-CN": "心内科"}
    ortho = factories.department(db, code="ORTH")
    org.do_set_active(db, OrgKind.DEPARTMENT, ortho, active=False, by=root.id)
    db.commit()

    def codes(**values: str) -> list[str | None]:
        return [e.code for e in org.org_list(db, OrgKind.DEPARTMENT, org.parse_org_filters(values))]

    assert codes() == ["CARD", "ORTH"]
    assert codes(active="yes") == ["CARD"] and codes(active="no") == ["ORTH"]
    assert codes(q="心内") == ["CARD"] and codes(q="orth") == ["ORTH"]
    assert db.get(Department, ortho.id) is not None
    with pytest.raises(Exception, match="active"):
        org.parse_org_filters({"active": "maybe"})


def test_hl7_doctor_codes_match_the_clinicians_hospital_code(db: Session) -> None:
    from backend.integration.codes import resolve
    from backend.integration.facts import CodedValue
    from backend.models import CodeKind

    root = factories.staff(db, username="root")
    cardio = factories.department(db, code="CARD")
    form = {"code": "D7", "name_zh-CN": "李明", "department": str(cardio.id), "clinician_kind": "doctor"}
    doctor = org.do_create(db, OrgKind.CLINICIAN, parse_org_form(OrgKind.CLINICIAN, form), by=root.id)
    assert resolve(db, CodeKind.DOCTOR, "HIS", CodedValue("D7", "Ming Li")) == doctor.id
    assert resolve(db, CodeKind.DOCTOR, "HIS", CodedValue("D8", "Someone")) is None  # pending
    assert resolve(db, CodeKind.DEPARTMENT, "HIS", CodedValue("CARD")) == cardio.id
    assert db.get(Clinician, doctor.id).kind is ClinicianKind.DOCTOR


def test_forms_offer_active_departments_and_the_one_already_chosen(db: Session) -> None:
    cardio = factories.department(db, code="CARD")
    closed = factories.department(db, code="OLD")
    closed.active = False
    db.flush()
    assert [d.code for d in org.department_choices(db, set())] == ["CARD"]
    assert [d.code for d in org.department_choices(db, {closed.id})] == ["CARD", "OLD"]
    assert cardio.active
