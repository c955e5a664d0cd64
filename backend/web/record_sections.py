"""The sections of a patient's page: a key (template `staff/patient/_<key>.html`), a title, a data function.

To add a section (appointments, cases, calls …): write the template and a data function
`load(ctx: SectionContext) -> dict[str, Any]`, and add one `RecordSection` line to SECTIONS where it
should appear. The template sees the page's context plus what its data function returned, under `data`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from backend.app.settings import get_settings
from backend.education.sending import articles_for
from backend.followup.catalog import definition_of
from backend.followup.finding_views import finding_texts
from backend.models import (
    Conversation,
    Encounter,
    Finding,
    Patient,
    QuestionnaireResponse,
    QuestionnaireVersion,
    StaffUser,
    Task,
    TaskStatus,
)
from backend.security.identifiers import mask_email, mask_phone
from backend.services.consents import current_consents
from backend.services.patient_record import (
    STAFF_CHANNELS,
    may_edit_contact,
    preflight,
    published_questionnaires,
    settable_flags,
    timeline,
)
from bots.domain import Channel


@dataclass(frozen=True)
class SectionContext:
    session: Session
    patient: Patient
    user: StaffUser
    now: datetime


@dataclass(frozen=True)
class RecordSection:
    key: str
    title: str  # a msgid of the staff catalogues
    load: Callable[[SectionContext], dict[str, Any]]

    @property
    def template(self) -> str:
        return f"staff/patient/_{self.key}.html"


def _age(born: date | None, today: date) -> int | None:
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def profile(ctx: SectionContext) -> dict[str, Any]:
    p = ctx.patient
    return {
        "phone": mask_phone(p.phone) if p.phone else "",
        "age": _age(p.birth_date, ctx.now.date()),
    }


def flags(ctx: SectionContext) -> dict[str, Any]:
    return {"flags": settable_flags(ctx.user)}


def consents(ctx: SectionContext) -> dict[str, Any]:
    found = current_consents(ctx.session, ctx.patient.id).values()
    return {"consents": sorted(found, key=lambda e: (e.purpose, e.channel))}


def identities(ctx: SectionContext) -> dict[str, Any]:
    """Each channel the patient can be reached on, masked, with its conversation if there is one."""
    p = ctx.patient
    last = {
        c.channel: c
        for c in ctx.session.scalars(
            sa.select(Conversation).where(Conversation.patient_id == p.id).order_by(Conversation.id)
        )
    }
    shown = {
        Channel.SMS: mask_phone(p.phone) if p.phone else "",
        Channel.WHATSAPP: mask_phone(p.whatsapp) if p.whatsapp else "",
        Channel.WECHAT: f"{p.wechat_openid[:4]}…" if p.wechat_openid else "",
        Channel.WEBCHAT: "",
        Channel.EMAIL: mask_email(p.email) if p.email else "",
    }
    return {
        "identities": [
            {"channel": ch, "address": shown.get(ch, ""), "conversation": last.get(ch)}
            for ch in (Channel.SMS, Channel.WECHAT, Channel.WHATSAPP, Channel.EMAIL, Channel.WEBCHAT)
            if shown.get(ch) or ch in last or ch is Channel.WEBCHAT
        ],
        "email_bounced": p.email_bounced,
        "may_edit_email": may_edit_contact(ctx.user),
    }


def encounters(ctx: SectionContext) -> dict[str, Any]:
    found = ctx.session.scalars(
        sa.select(Encounter)
        .where(Encounter.patient_id == ctx.patient.id)
        .options(
            selectinload(Encounter.department),
            selectinload(Encounter.ward),
            selectinload(Encounter.attending_doctor),
        )
        .order_by(Encounter.started_at.desc(), Encounter.id.desc())
    )
    return {"encounters": list(found)}


def conversations(ctx: SectionContext) -> dict[str, Any]:
    return {"entries": timeline(ctx.session, ctx.patient.id, user=ctx.user)}


def responses(ctx: SectionContext) -> dict[str, Any]:
    found = list(
        ctx.session.scalars(
            sa.select(QuestionnaireResponse)
            .where(QuestionnaireResponse.patient_id == ctx.patient.id)
            .order_by(QuestionnaireResponse.started_at.desc())
        )
    )
    findings: dict[int, list[Finding]] = {}
    if found:
        for finding in ctx.session.scalars(
            sa.select(Finding).where(Finding.response_id.in_([r.id for r in found])).order_by(Finding.id)
        ):
            findings.setdefault(finding.response_id, []).append(finding)
    return {"responses": found, "findings": findings, "finding_texts": _finding_texts(ctx, found, findings)}


def _finding_texts(
    ctx: SectionContext, found: list[QuestionnaireResponse], findings: dict[int, list[Finding]]
) -> dict[int, str]:
    """Each finding in words (its rule's text in the reader's language), by finding id."""
    texts: dict[int, str] = {}
    versions: dict[int, dict[str, str]] = {}
    for response in found:
        if response.id not in findings:
            continue
        if response.version_id not in versions:
            version = ctx.session.get(QuestionnaireVersion, response.version_id)
            q = definition_of(version) if version is not None else None
            versions[response.version_id] = finding_texts(q, ctx.user.language) if q else {}
        for finding in findings[response.id]:
            texts[finding.id] = versions[response.version_id].get(finding.code, "")
    return texts


def tasks(ctx: SectionContext) -> dict[str, Any]:
    found = ctx.session.scalars(
        sa.select(Task)
        .where(Task.patient_id == ctx.patient.id)
        .order_by((Task.status == TaskStatus.CLOSED), Task.due_at.desc())
        .limit(100)
    )
    return {"tasks": list(found)}


def actions(ctx: SectionContext) -> dict[str, Any]:
    """Quick actions; each channel with what the outbox gates say about starting contact on it now."""
    return {
        "channels": [(ch, preflight(ctx.session, ctx.patient, ch, ctx.now)) for ch in STAFF_CHANNELS],
        "questionnaires": published_questionnaires(ctx.session),
        "articles": [
            (a.id, a.text("title", ctx.user.language)) for a in articles_for(ctx.session, get_settings())
        ],
    }


def appointments(ctx: SectionContext) -> dict[str, Any]:
    from backend.services.appointment_views import appointment_rows

    return {"appointments": appointment_rows(ctx.session, ctx.patient.id)}


def cases(ctx: SectionContext) -> dict[str, Any]:
    from backend.services import case_queries
    from backend.web.cases import labeller  # lazily: web.cases imports the staff pages

    return {
        "patient_cases": case_queries.patient_cases(ctx.session, user=ctx.user, patient_id=ctx.patient.id),
        "case_label": labeller(ctx.user.language),
    }


def calls(ctx: SectionContext) -> dict[str, Any]:
    from backend.voice.call_views import patient_calls

    return {"calls": patient_calls(ctx.session, ctx.patient.id, ctx.user.language)}


def rights(ctx: SectionContext) -> dict[str, Any]:
    from backend.privacy.views import record_section

    return record_section(ctx.session, patient_id=ctx.patient.id, user=ctx.user, now=ctx.now)


SECTIONS: tuple[RecordSection, ...] = (
    RecordSection("profile", "Profile", profile),
    RecordSection("flags", "Exclusion lists", flags),
    RecordSection("actions", "Quick actions", actions),
    RecordSection("tasks", "Tasks", tasks),
    RecordSection("responses", "Questionnaires", responses),
    RecordSection("appointments", "Appointments", appointments),
    RecordSection("cases", "Complaints, praise and suggestions", cases),
    RecordSection("calls", "Voice calls", calls),
    RecordSection("conversations", "Conversations", conversations),
    RecordSection("encounters", "Encounters", encounters),
    RecordSection("consents", "Consents", consents),
    RecordSection("identities", "Channel identities", identities),
    RecordSection("rights", "Data rights and access", rights),
    # merged from other branches: appointments, cases (complaints), calls with recordings
)


def load_sections(ctx: SectionContext) -> list[tuple[RecordSection, dict[str, Any]]]:
    return [(section, section.load(ctx)) for section in SECTIONS]
