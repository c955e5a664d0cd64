"""Staff view of a patient's appointments: plain rows for the patient page's appointments section."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from backend.services.booking import booked_in_hospital, patient_appointments


@dataclass(frozen=True, slots=True)
class AppointmentRow:
    id: int
    when: str  # local time at the site, with its zone
    doctor: str
    department: str
    site: str
    status: str  # AppointmentStatus value (translated in the template)
    channel: str  # Channel value, or "hospital" for one the hospital's system booked
    changes: int  # moves and the cancellation, from the iCalendar sequence


def appointment_rows(session: Session, patient_id: int, limit: int = 50) -> list[AppointmentRow]:
    """Latest first. Viewing them is part of viewing the patient: the page that shows them audits it."""
    rows = []
    for appointment in patient_appointments(session, patient_id, limit):
        slot = appointment.slot
        local = appointment.starts_at.astimezone(ZoneInfo(slot.site.timezone))
        rows.append(
            AppointmentRow(
                id=appointment.id,
                when=f"{local:%Y-%m-%d %H:%M} ({slot.site.timezone})",
                doctor=slot.clinician.name,
                department=slot.department.name,
                site=slot.site.name,
                status=appointment.status.value,
                channel="hospital" if booked_in_hospital(appointment) else appointment.channel.value,
                changes=appointment.sequence,
            )
        )
    return rows
