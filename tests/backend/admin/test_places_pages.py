"""Campus, calendar and schedule pages through HTTP (the app's own clock: dates are chosen far ahead):
a site is added, refused with the form kept, its calendar set by hand and by a sheet, exported and read
back; a schedule is added, a double booking refused with the clashes listed, a holiday strands a booked
patient who is then notified; the hospital's own schedules are read-only; the pages are for admins."""

from __future__ import annotations

import io
from datetime import date, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from backend.models import (
    AuditEvent,
    Clinician,
    ClinicianKind,
    DoctorSchedule,
    OutboxItem,
    Site,
    SiteCalendarDay,
    Slot,
)
from backend.models.base import utcnow
from backend.services.booking import do_book
from bots.domain import Channel
from tests import factories
from tests.backend.admin.helpers import admin, sign_in

SITE = {
    "code": "EAST",
    "name_zh-CN": "东院",
    "name_vi": "Cơ sở Đông",
    "name_en": "East campus",
    "timezone": "Asia/Shanghai",
    "address": "1 East Road",
    "voice_departments": "CARD, NEURO",
    "voice_windows": "09:00-12:00, 14:00-17:00",
    "voice_caller_id": "+862100000001",
    "sms_sender_id": "EastHosp",
}


def _actions(db: Session) -> list[str]:
    db.expire_all()
    return list(db.scalars(sa.select(AuditEvent.action)))


def test_a_campus_is_added_refused_edited_and_exported(client: TestClient, db: Session) -> None:
    root = admin(db)
    db.commit()
    token = sign_in(client, root)
    bad = client.post("/staff/admin/sites", data={**SITE, "timezone": "Mars/Olympus", "csrf_token": token})
    assert bad.status_code == 400 and "Asia/Ho_Chi_Minh" in bad.text and 'value="东院"' in bad.text
    bad = client.post(
        "/staff/admin/sites", data={**SITE, "voice_windows": "09:00-12:00, 11:00-13:00", "csrf_token": token}
    )
    assert bad.status_code == 400 and "overlap" in bad.text
    assert db.scalar(sa.select(sa.func.count()).select_from(Site)) == 0
    done = client.post("/staff/admin/sites", data={**SITE, "csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303
    db.expire_all()
    site = db.scalars(sa.select(Site)).one()
    assert (site.voice_departments, site.voice_windows, site.voice_caller_id, site.sms_sender_id) == (
        ["CARD", "NEURO"],
        ["09:00-12:00", "14:00-17:00"],
        "+862100000001",
        "EastHosp",
    )
    taken = client.post("/staff/admin/sites", data={**SITE, "csrf_token": token})
    assert taken.status_code == 400 and "EAST East campus" in taken.text
    saved = client.post(
        f"/staff/admin/sites/{site.id}", data={**SITE, "voice_windows": "", "csrf_token": token}
    )
    assert saved.status_code == 200 and "Saved." in saved.text
    db.expire_all()
    assert db.get(Site, site.id).voice_windows is None  # type: ignore[union-attr]
    listed = client.get("/staff/admin/sites?q=东院")
    assert 'data-site="' in listed.text
    book = load_workbook(io.BytesIO(client.get("/staff/admin/sites/export.xlsx?q=east").content))
    values = [list(r) for r in book.active.iter_rows(values_only=True)]  # type: ignore[union-attr]
    assert values[-1][:2] == ["EAST", "东院"]
    assert {"site.create", "site.update", "admin.site_list", "admin.site_export"} <= set(_actions(db))


def test_a_calendar_by_hand_by_sheet_and_back(client: TestClient, db: Session) -> None:
    root = admin(db)
    db.commit()
    token = sign_in(client, root)
    client.post("/staff/admin/sites", data={**SITE, "csrf_token": token})
    site_id = db.scalars(sa.select(Site.id)).one()
    page = f"/staff/admin/sites/{site_id}"
    wrong = client.post(
        f"{page}/calendar",
        data={"day": "2031-02-05", "kind": "workday", "as_weekday": "0", "csrf_token": token},
    )
    assert wrong.status_code == 400 and "weekdays are working days already" in wrong.text  # a Wednesday
    added = client.post(
        f"{page}/calendar",
        data={"day": "2031-02-08", "kind": "workday", "as_weekday": "4", "name": "调休", "csrf_token": token},
    )
    assert added.status_code == 200 and 'data-day="2031-02-08"' in added.text
    sheet = (
        "day,kind,as_weekday,name\n2031-01-23,节假日,,春节\n2031-01-24,holiday,,春节\n2031-01-26,调休,5,\n"
    )
    imported = client.post(
        f"{page}/calendar/import",
        data={"csrf_token": token},
        files={"file": ("2031.csv", sheet.encode(), "text/csv")},
    )
    assert imported.status_code == 200
    db.expire_all()
    days = {d.day: d for d in db.scalars(sa.select(SiteCalendarDay))}
    # the sheet replaced the year: the day added by hand is gone, the sheet's three are there
    assert sorted(days) == [date(2031, 1, 23), date(2031, 1, 24), date(2031, 1, 26)]
    assert days[date(2031, 1, 26)].as_weekday == 4
    broken = "day,kind\n2031-03-01,holiday\n2031-13-01,holiday\n"
    refused = client.post(
        f"{page}/calendar/import",
        data={"csrf_token": token},
        files={"file": ("x.csv", broken.encode(), "text/csv")},
    )
    assert refused.status_code == 400 and "Row 3:" in refused.text and "Nothing was changed." in refused.text
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(SiteCalendarDay)) == 3
    exported = client.get(f"{page}/calendar.xlsx?year=2031")
    rows = [
        [c or "" for c in r]
        for r in load_workbook(io.BytesIO(exported.content)).active.iter_rows(values_only=True)
    ]  # type: ignore[union-attr]
    assert rows[0] == ["day", "kind", "as_weekday", "name"] and rows[3] == ["2031-01-26", "workday", "5", ""]
    removed = client.post(f"{page}/calendar/remove", data={"day": "2031-01-24", "csrf_token": token})
    assert removed.status_code == 200
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(SiteCalendarDay)) == 2
    assert {
        "site.calendar_set",
        "site.calendar_import",
        "site.calendar_import_refused",
        "site.calendar_remove",
        "admin.site_calendar_export",
    } <= set(_actions(db))


def _doctor(db: Session) -> Clinician:
    department = factories.department(db, code="CARD")
    doctor = Clinician(kind=ClinicianKind.DOCTOR, department_id=department.id, name="Dr Lin", code="D1")
    db.add(doctor)
    db.flush()
    return doctor


def test_schedules_clashes_stranded_patients_and_the_hospitals_own(client: TestClient, db: Session) -> None:
    root = admin(db)
    doctor = _doctor(db)
    db.commit()
    token = sign_in(client, root)
    client.post("/staff/admin/sites", data={**SITE, "csrf_token": token})
    site_id = db.scalars(sa.select(Site.id)).one()
    every_day = {f"weekday_{d}": "on" for d in range(7)}
    template = {
        "clinician": str(doctor.id),
        "site": str(site_id),
        "sessions": "08:00-09:00",
        "slot_minutes": "30",
        "capacity": "1",
        "valid_from": "2020-01-01",
        "csrf_token": token,
        **every_day,
    }
    created = client.post("/staff/admin/schedules", data=template)
    assert created.status_code == 200 and 'id="week"' in created.text
    schedule = db.scalars(sa.select(DoctorSchedule)).one()
    clash = client.post("/staff/admin/schedules", data={**template, "sessions": "08:30-10:00"})
    assert clash.status_code == 400 and 'id="clashes"' in clash.text and "08:30" in clash.text
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(DoctorSchedule)) == 1

    # a patient books a slot a week ahead; that day becomes a holiday; the schedule lists the patient
    now = utcnow()
    slot = db.scalars(
        sa.select(Slot).where(Slot.starts_at > now + timedelta(days=7)).order_by(Slot.starts_at)
    ).first()
    assert slot is not None
    patient = factories.patient(db)
    appointment = do_book(db, patient_id=patient.id, slot_id=slot.id, channel=Channel.SMS, source="test")
    db.commit()
    client.post(
        f"/staff/admin/sites/{site_id}/calendar",
        data={"day": slot.local_date.isoformat(), "kind": "holiday", "csrf_token": token},
    )
    page = client.get(f"/staff/admin/schedules/{schedule.id}?week={slot.local_date.isoformat()}")
    assert f'data-appointment="{appointment.id}"' in page.text and "withdrawn" in page.text
    notified = client.post(
        f"/staff/admin/schedules/{schedule.id}/notify",
        data={f"appt_{appointment.id}": "on", "csrf_token": token},
    )
    assert notified.status_code == 200 and "Messages queued: 1" in notified.text
    db.expire_all()
    items = db.scalars(sa.select(OutboxItem).where(OutboxItem.patient_id == patient.id)).all()
    notices = [i for i in items if i.template_vars and "clinic changed" in i.template_vars["text"]]
    assert len(notices) == 1 and notices[0].created_by_staff_id == root.id
    assert "admin.schedule_stranded_view" in _actions(db)

    # leave over the whole week, then taken back
    leave = client.post(
        f"/staff/admin/schedules/{schedule.id}/exceptions",
        data={"first_day": "2020-01-02", "last_day": "2020-01-01", "kind": "leave", "csrf_token": token},
    )
    assert leave.status_code == 400 and "Last day" in leave.text

    schedule.external_source = "HIS^EAST"
    db.commit()
    read_only = client.get(f"/staff/admin/schedules/{schedule.id}")
    assert 'id="external"' in read_only.text and 'id="schedule-edit"' not in read_only.text
    refused = client.post(
        f"/staff/admin/schedules/{schedule.id}/active", data={"active": "no", "csrf_token": token}
    )
    assert refused.status_code == 400 and "change it there" in refused.text
    listed = client.get("/staff/admin/schedules?source=external")
    assert f'data-schedule="{schedule.id}"' in listed.text
    assert f'data-schedule="{schedule.id}"' not in client.get("/staff/admin/schedules?source=own").text


def test_a_nurse_gets_none_of_it(client: TestClient, db: Session) -> None:
    nurse = factories.staff(db, username="nurse1")
    db.commit()
    sign_in(client, nurse)
    for page in (
        "/staff/admin/sites",
        "/staff/admin/schedules",
        "/staff/admin/sites/1",
        "/staff/admin/schedules/1",
    ):
        assert client.get(page).status_code == 403, page
