"""An appointment as an iCalendar (.ics) file for the patient's calendar app, with its signed link."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from icalendar import Calendar, Event

from backend.app.settings import Settings
from backend.dialogue.content import load_catalog
from backend.messaging.links import LinkKind, make_url
from backend.models import Appointment, AppointmentStatus, Slot
from bots.domain import pick_language


def calendar_url(settings: Settings, appointment_id: int) -> str:
    return make_url(settings, LinkKind.CALENDAR, appointment_id)


def appointment_ics(
    settings: Settings, appointment: Appointment, slot: Slot, language: str, now: datetime
) -> bytes:
    """One VEVENT in UTC. The UID stays the same across moves and SEQUENCE grows with each change, so a
    calendar that imported it before updates the entry (or marks it cancelled) instead of adding one."""
    lang = pick_language(language)
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    department = slot.department.name_in(lang)
    site = slot.site.names.get(lang) or slot.site.name
    calendar = Calendar()
    calendar.add("prodid", "-//CareLoop//appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"appointment-{appointment.id}@{urlsplit(settings.public_url).hostname or 'careloop'}")
    event.add("dtstamp", now)
    event.add("dtstart", appointment.starts_at)
    event.add("dtend", appointment.ends_at)
    event.add("sequence", appointment.sequence)
    event.add(
        "summary",
        catalog.text(lang, "booking.ics_summary", doctor=slot.clinician.name_in(lang), department=department),
    )
    event.add("description", catalog.text(lang, "booking.ics_description"))
    event.add("location", ", ".join(p for p in (site, slot.site.address) if p))
    cancelled = appointment.status is AppointmentStatus.CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    return bytes(calendar.to_ical())
