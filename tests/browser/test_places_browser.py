"""In Chromium: an admin adds a campus (a wrong time zone refused with nothing typed lost), keeps its
working calendar (a holiday, a make-up workday), adds a doctor's weekly schedule, sees its slots as a week
table, a clashing second schedule is refused with the clashes listed, a holiday strands a booked patient
who is then notified; the pages read in English, Chinese and Vietnamese; axe-core finds nothing serious."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from backend.models import Clinician, ClinicianKind, DoctorSchedule, Role, Site, Slot, StaffUser
from backend.models.base import utcnow
from backend.services.booking import do_book
from bots.domain import Channel
from tests import factories
from tests.browser import axe
from tests.browser.visible_words import leaks
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def _sign_in(browser: Any, base: str, secret: str) -> Any:
    page = browser.new_context(locale="en-GB").new_page()
    page.goto(f"{base}/staff/login")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Authenticator code").fill(pyotp.TOTP(secret).now())
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    return page


def test_a_campus_its_calendar_and_a_doctors_schedule(live_server: str, browser: Any, db: Session) -> None:
    cardio = factories.department(db, code="CARD")
    doctor = Clinician(kind=ClinicianKind.DOCTOR, department_id=cardio.id, name="Dr Lin", code="D1")
    db.add(doctor)
    root = factories.staff(db, username="root", role=Role.ADMIN, totp=True)
    db.commit()
    assert root.totp_secret
    admin = _sign_in(browser, live_server, root.totp_secret)
    found: dict[str, str] = {}
    admin.get_by_role("link", name="Administration").click()
    admin.get_by_role("link", name="Campuses").click()
    form = admin.locator("#site-add")
    form.get_by_label("Hospital code").fill("EAST")
    form.get_by_label("Name (Chinese)").fill("东院")
    form.get_by_label("Name (English)").fill("East campus")
    form.get_by_label("Time zone").fill("Asia/Shanghia")
    form.get_by_label("Caller id").fill("+862100000001")
    form.get_by_role("button", name="Add").click()
    expect(admin.locator("#refused")).to_contain_text("Asia/Shanghai")
    form = admin.locator("#site-add")
    expect(form.get_by_label("Name (Chinese)")).to_have_value("东院")  # nothing typed is lost
    form.get_by_label("Time zone").fill("Asia/Shanghai")
    form.get_by_role("button", name="Add").click()
    expect(admin.locator("#done")).to_be_visible()
    found["sites"] = axe.describe(axe.violations(admin))
    admin.get_by_role("link", name="EAST").click()

    # the calendar: a holiday a week ahead, and a make-up Saturday that runs Monday's clinics
    today = utcnow().date()
    holiday = today + timedelta(days=8)
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 + 14)
    admin.goto(f"{live_server}/staff/admin/sites/{_site_id(db)}?year={holiday.year}")
    day_form = admin.locator("#calendar-add")
    day_form.get_by_label("Date").fill(holiday.isoformat())
    day_form.get_by_label("Kind").select_option("holiday")
    day_form.get_by_label("Name").fill("春节")
    day_form.get_by_role("button", name="Add").click()
    expect(admin.locator("#done")).to_be_visible()
    expect(admin.locator(f'tr[data-day="{holiday.isoformat()}"]')).to_contain_text("Holiday")
    admin.goto(f"{live_server}/staff/admin/sites/{_site_id(db)}?year={saturday.year}")
    day_form = admin.locator("#calendar-add")
    day_form.get_by_label("Date").fill(saturday.isoformat())
    day_form.get_by_label("Kind", exact=True).select_option("workday")
    day_form.get_by_label("Runs the clinics of (make-up workdays)").select_option("0")
    day_form.get_by_role("button", name="Add").click()
    expect(admin.locator(f'tr[data-day="{saturday.isoformat()}"]')).to_contain_text("Monday")
    found["site"] = axe.describe(axe.violations(admin))

    # a weekly schedule, Monday to Friday mornings
    admin.goto(f"{live_server}/staff/admin/schedules")
    add = admin.locator("#schedule-add")
    add.get_by_label("Doctor").select_option(str(doctor.id))
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"):
        add.get_by_label(day).check()
    add.get_by_label("Sessions").fill("08:00-10:00")
    add.get_by_label("Minutes per slot").fill("30")
    add.get_by_label("Patients per slot").fill("2")
    add.get_by_label("Valid from").fill("2020-01-01")
    add.get_by_role("button", name="Add").click()
    expect(admin.locator("#done")).to_contain_text("slots for the coming four weeks")
    admin.goto(f"{admin.url.split('?')[0]}?week={saturday.isoformat()}")
    week = admin.locator("#week")
    expect(week.get_by_role("row", name="08:00")).to_be_visible()
    expect(week.locator("tbody tr").first.locator("td").nth(5)).to_contain_text(
        "2 free"
    )  # the make-up Saturday
    expect(week.locator("tbody tr").first.locator("td").nth(6)).to_have_text("")  # an ordinary Sunday
    found["schedule"] = axe.describe(axe.violations(admin))
    schedule_url = admin.url.split("?")[0].removeprefix(live_server)

    # a second schedule over the same mornings is refused with the clashes listed
    admin.goto(f"{live_server}/staff/admin/schedules")
    add = admin.locator("#schedule-add")
    add.get_by_label("Doctor").select_option(str(doctor.id))
    add.get_by_label("Wednesday").check()
    add.get_by_label("Sessions").fill("09:30-11:00")
    add.get_by_label("Valid from").fill("2020-01-01")
    add.get_by_role("button", name="Add").click()
    expect(admin.locator("#refused")).to_contain_text("two clinics at once")
    expect(admin.locator("#clashes li").first).to_contain_text("09:30")
    found["schedules refused"] = axe.describe(axe.violations(admin))
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(DoctorSchedule)) == 1

    # a booked patient on a day that then becomes a holiday is listed and notified
    schedule = db.scalars(sa.select(DoctorSchedule)).one()
    slot = db.scalars(
        sa.select(Slot)
        .where(
            Slot.schedule_id == schedule.id,
            Slot.withdrawn_at.is_(None),
            Slot.starts_at > utcnow() + timedelta(days=2),
        )
        .order_by(Slot.starts_at)
    ).first()
    assert slot is not None
    patient = factories.patient(db)
    do_book(db, patient_id=patient.id, slot_id=slot.id, channel=Channel.SMS, source="test")
    db.commit()
    admin.goto(f"{live_server}/staff/admin/sites/{_site_id(db)}?year={slot.local_date.year}")
    day_form = admin.locator("#calendar-add")
    day_form.get_by_label("Date").fill(slot.local_date.isoformat())
    day_form.get_by_label("Kind", exact=True).select_option("holiday")
    day_form.get_by_role("button", name="Add").click()
    expect(admin.locator("#done")).to_contain_text("Booked appointments on withdrawn slots: 1")
    admin.locator("#done").get_by_role("link").click()
    admin.get_by_role("link", name="Dr Lin").click()
    stranded = admin.locator("#stranded-list")
    expect(stranded).to_contain_text(patient.mrn)
    found["schedule stranded"] = axe.describe(axe.violations(admin))
    admin.get_by_role("button", name="Notify the ticked patients").click()
    expect(admin.locator("#done")).to_contain_text("Messages queued: 1")

    # the pages in the other two languages: no raw ids, no untranslated English
    data = [
        "EAST",
        "东院",
        "East campus",
        "春节",
        "Dr Lin",
        "D1",
        "CARD",
        patient.mrn,
        cardio.name,
        *cardio.names.values(),
    ]
    leaked: dict[str, list[str]] = {}
    for lang in ("en", "zh-CN", "vi"):
        db.execute(sa.update(StaffUser).where(StaffUser.id == root.id).values(language=lang))
        db.commit()
        for url in (
            "/staff/admin/sites",
            f"/staff/admin/sites/{_site_id(db)}",
            "/staff/admin/schedules",
            schedule_url,
        ):
            admin.goto(f"{live_server}{url}")
            problems = leaks(admin.locator("main").inner_text(), lang, data)
            if problems:
                leaked[f"{lang} {url}"] = problems
    admin.context.close()
    assert leaked == {}
    assert {name: text for name, text in found.items() if text} == {}


def _site_id(db: Session) -> int:
    db.expire_all()
    return int(db.scalars(sa.select(Site.id).where(Site.code == "EAST")).one())
