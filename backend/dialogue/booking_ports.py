"""The dialogue engine's booking ports (bots/ports.py): free departments, doctors, dates, sites and slots
as choices; book, move, cancel and list appointments as actions, through the booking do_* verbs.

Slots the flows use (all prefixed `bk_`): bk_department, bk_doctor, bk_date, bk_part, bk_site (an id or
"any"), bk_slot (the chosen slot id), bk_appointment (the appointment being moved or cancelled). Actions
run in the turn's transaction; a refusal writes nothing and comes back as its reason as the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.messaging.links import LinkKind, link_ref
from backend.models import (
    Appointment,
    Clinician,
    Conversation,
    Department,
    Patient,
    Site,
    Slot,
)
from backend.models.base import utcnow
from backend.services.booking import (
    BookingRefused,
    booked_in_hospital,
    do_book,
    do_cancel,
    do_reschedule,
    upcoming_appointments,
)
from backend.services.booking_rules import Refusal, TimeOfDay
from backend.services.ids import parse_id
from backend.services.schedules import free_slot_query
from bots.catalog import Catalog
from bots.ports import Action, ActionResult, ChoiceSource, DynamicChoice

ANY = "any"
MAX_OFFERED = 8  # options per question: a chat list, an SMS and a spoken menu stay readable
FILTERS = ("bk_department", "bk_doctor", "bk_date", "bk_part", "bk_site")


def _chosen(slots: Mapping[str, Any], key: str) -> str | None:
    value = slots.get(key)
    return None if value in (None, "", ANY) else str(value)


def _int(slots: Mapping[str, Any], key: str) -> int | None:
    value = _chosen(slots, key)
    return parse_id(value)


class BookingPorts:
    """One conversation's booking view; labels come from the catalogue in the patient's language."""

    def __init__(self, session: Session, conversation: Conversation, catalog: Catalog) -> None:
        self.session, self.conversation, self.catalog = session, conversation, catalog

    def choices(self) -> dict[str, ChoiceSource]:
        return {
            "booking_departments": self.departments,
            "booking_doctors": self.doctors,
            "booking_dates": self.dates,
            "booking_sites": self.sites,
            "booking_slots": self.free_slots,
            "booking_upcoming": self.upcoming,
        }

    def actions(self) -> dict[str, Action]:
        return {
            "booking_identified": self.identified,
            "booking_book": self.book,
            "booking_load": self.load,
            "booking_reschedule": self.reschedule,
            "booking_cancel": self.cancel,
            "booking_list": self.list_upcoming,
        }

    # --- helpers -------------------------------------------------------------------------------
    def _patient(self) -> Patient | None:
        pid = self.conversation.patient_id
        return self.session.get(Patient, pid) if pid else None

    def _zone(self) -> ZoneInfo:
        patient = self._patient()
        return ZoneInfo(patient.timezone if patient else get_settings().default_timezone)

    def _free(self, slots: Mapping[str, Any], *, without: str | None = None) -> sa.Select[Any]:
        """Free future slots matching the chosen filters (all but `without`)."""
        parsers: dict[str, tuple[str, Callable[[str], Any]]] = {
            "bk_department": ("department_id", int),
            "bk_doctor": ("clinician_id", int),
            "bk_date": ("on", date.fromisoformat),
            "bk_part": ("part_of_day", TimeOfDay),
            "bk_site": ("site_id", int),
        }
        filters: dict[str, Any] = {}
        for key, (name, parse) in parsers.items():
            value = _chosen(slots, key)
            if key == without or value is None:
                continue
            try:
                filters[name] = parse(value)
            except ValueError:  # not a filter value (a menu choice id left in the slot): no filter
                continue
        moving = _int(slots, "bk_appointment")
        current = self.session.get(Appointment, moving) if moving is not None else None
        return free_slot_query(
            now=utcnow(), exclude_slot_ids=[current.slot_id] if current is not None else [], **filters
        )

    def _when(self, at: datetime) -> str:
        return at.astimezone(self._zone()).strftime("%Y-%m-%d %H:%M")

    def _label(self, key: str, slot: Slot, lang: str) -> str:
        return self.catalog.text(
            lang,
            key,
            when=self._when(slot.starts_at),
            doctor=slot.clinician.name_in(lang),
            department=slot.department.name_in(lang),
            site=slot.site.names.get(lang) or slot.site.name,
        )

    # --- choice sources ------------------------------------------------------------------------
    def departments(self, slots: Mapping[str, Any], lang: str) -> Sequence[DynamicChoice]:
        ids = self._free(slots, without="bk_department").with_only_columns(Slot.department_id).distinct()
        rows = self.session.scalars(
            sa.select(Department).where(Department.id.in_(ids)).order_by(Department.name)
        )
        return [DynamicChoice(str(d.id), d.name_in(lang)) for d in rows][:MAX_OFFERED]

    def doctors(self, slots: Mapping[str, Any], lang: str) -> Sequence[DynamicChoice]:
        ids = self._free(slots, without="bk_doctor").with_only_columns(Slot.clinician_id).distinct()
        rows = self.session.scalars(
            sa.select(Clinician).where(Clinician.id.in_(ids)).order_by(Clinician.name)
        )
        return [DynamicChoice(str(c.id), c.name_in(lang)) for c in rows][:MAX_OFFERED]

    def dates(self, slots: Mapping[str, Any], lang: str) -> Sequence[DynamicChoice]:
        days = self.session.scalars(
            self._free(slots, without="bk_date")
            .with_only_columns(Slot.local_date)
            .distinct()
            .order_by(Slot.local_date)
            .limit(MAX_OFFERED)
        ).all()
        return [
            DynamicChoice(
                d.isoformat(),
                self.catalog.text(
                    lang,
                    "booking.date_label",
                    date=d.isoformat(),
                    weekday=self.catalog.text(lang, f"booking.weekday_{d.weekday()}"),
                ),
            )
            for d in days
        ]

    def sites(self, slots: Mapping[str, Any], lang: str) -> Sequence[DynamicChoice]:
        ids = self._free(slots, without="bk_site").with_only_columns(Slot.site_id).distinct()
        rows = self.session.scalars(sa.select(Site).where(Site.id.in_(ids)).order_by(Site.name))
        return [DynamicChoice(str(s.id), s.names.get(lang) or s.name) for s in rows][:MAX_OFFERED]

    def free_slots(self, slots: Mapping[str, Any], lang: str) -> Sequence[DynamicChoice]:
        rows = self.session.scalars(
            self._free(slots).order_by(Slot.starts_at, Slot.id).limit(MAX_OFFERED)
        ).all()
        return [DynamicChoice(str(s.id), self._label("booking.slot_label", s, lang)) for s in rows]

    def upcoming(self, slots: Mapping[str, Any], lang: str) -> Sequence[DynamicChoice]:
        patient = self._patient()
        if patient is None:
            return []
        return [
            DynamicChoice(str(a.id), self._label("booking.appointment_label", a.slot, lang))
            for a in upcoming_appointments(self.session, patient.id)[:MAX_OFFERED]
        ]

    # --- actions -------------------------------------------------------------------------------
    def identified(self, slots: Mapping[str, Any], lang: str) -> ActionResult:
        return ActionResult("yes" if self._patient() is not None else "no")

    def _done(self, appointment: Appointment, lang: str) -> dict[str, Any]:
        settings = get_settings()
        days = settings.calendar_link_days
        # a reference, minted into the link (short on SMS) when the message is sent or shown
        url = link_ref(LinkKind.CALENDAR, appointment.id, days=days)
        slot = self.session.get(Slot, appointment.slot_id)
        assert slot is not None
        return {
            "bk_appointment_label": self._label("booking.appointment_label", slot, lang),
            "bk_ics_url": url,
            **dict.fromkeys((*FILTERS, "bk_slot", "bk_slot_label", "bk_confirmed", "bk_appointment")),
        }

    def _refused(self, refused: BookingRefused) -> ActionResult:
        detail = {f"bk_{k}": v for k, v in refused.detail.items() if isinstance(v, int | str)}
        return ActionResult(refused.reason.value, {"bk_slot": None, "bk_slot_label": None, **detail})

    def book(self, slots: Mapping[str, Any], lang: str) -> ActionResult:
        patient, slot_id = self._patient(), _int(slots, "bk_slot")
        if patient is None or slot_id is None:
            return ActionResult("slot_unknown")
        channel = self.conversation.channel
        try:
            appointment = do_book(
                self.session,
                patient_id=patient.id,
                slot_id=slot_id,
                channel=channel,
                source=f"{channel.value}:booking",
            )
        except BookingRefused as refused:
            return self._refused(refused)
        return ActionResult("booked", self._done(appointment, lang))

    def load(self, slots: Mapping[str, Any], lang: str) -> ActionResult:
        """The appointment chosen to move: its department and doctor become the filters for new times."""
        patient, appointment_id = self._patient(), _int(slots, "bk_appointment")
        appointment = self.session.get(Appointment, appointment_id) if appointment_id else None
        if patient is None or appointment is None or appointment.patient_id != patient.id:
            return ActionResult("not_found", {"bk_appointment": None})
        if booked_in_hospital(appointment):  # said before the patient picks a new time, not after
            return ActionResult(Refusal.HOSPITAL_BOOKED.value, {"bk_appointment": None})
        slot = self.session.get(Slot, appointment.slot_id)
        assert slot is not None
        return ActionResult(
            "loaded",
            {
                "bk_department": str(slot.department_id),
                "bk_doctor": str(slot.clinician_id),
                "bk_appointment_label": self._label("booking.appointment_label", slot, lang),
            },
        )

    def reschedule(self, slots: Mapping[str, Any], lang: str) -> ActionResult:
        patient, appointment_id, slot_id = (
            self._patient(),
            _int(slots, "bk_appointment"),
            _int(slots, "bk_slot"),
        )
        if patient is None or appointment_id is None or slot_id is None:
            return ActionResult("not_found")
        try:
            appointment = do_reschedule(
                self.session,
                patient_id=patient.id,
                appointment_id=appointment_id,
                slot_id=slot_id,
                channel=self.conversation.channel,
            )
        except BookingRefused as refused:
            return self._refused(refused)
        return ActionResult("moved", self._done(appointment, lang))

    def cancel(self, slots: Mapping[str, Any], lang: str) -> ActionResult:
        patient, appointment_id = self._patient(), _int(slots, "bk_appointment")
        if patient is None or appointment_id is None:
            return ActionResult("not_found")
        try:
            do_cancel(
                self.session,
                patient_id=patient.id,
                appointment_id=appointment_id,
                channel=self.conversation.channel,
            )
        except BookingRefused as refused:
            return self._refused(refused)
        return ActionResult("cancelled", {"bk_appointment": None, "bk_confirmed": None})

    def list_upcoming(self, slots: Mapping[str, Any], lang: str) -> ActionResult:
        lines = [choice.label for choice in self.upcoming(slots, lang)]
        if not lines:
            return ActionResult("none")
        return ActionResult(
            "listed", {"bk_list": "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))}
        )
