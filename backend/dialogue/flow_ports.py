"""The dialogue engine's ports (bots/ports.py) over the database: choice sources, actions, surveys.

Built per turn around the locked conversation; actions run inside the turn's transaction and change
state only through do_* verbs (binding, audit). Labels are in the patient's language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.dialogue.booking_ports import BookingPorts
from backend.dialogue.content import load_answer_messages
from backend.followup.catalog import definition_of, latest_version
from backend.models import ChannelPreference, Conversation, Department, Patient, QuestionnaireVersion
from backend.models.base import utcnow
from backend.models.binding import BindMethod
from backend.services import audit
from backend.services.binding import BindRefused, Throttled, do_bind_wechat, do_identify
from backend.services.consents import current_consents
from bots.catalog import Catalog
from bots.domain import Channel, ConsentPurpose
from bots.ports import ActionResult, DynamicChoice, Ports
from questionnaires.model import Kind, Questionnaire

FORGET_IDENTIFIERS = {"phone": None, "mrn": None, "birth_date": None}
CHAT_SURVEY_KINDS = {Kind.SATISFACTION.value}


def _texts(texts: Mapping[str, str], lang: str) -> str:
    return texts.get(lang) or texts.get("en") or next(iter(texts.values()), "")


class DatabasePorts:
    """One conversation's view of the world for the engine."""

    def __init__(self, session: Session, conversation: Conversation, catalog: Catalog, content_dir: Path):
        self.session, self.conversation, self.catalog, self.content_dir = (
            session,
            conversation,
            catalog,
            content_dir,
        )
        self._questionnaires: dict[str, Questionnaire | None] = {}

    def ports(self) -> Ports:
        booking = BookingPorts(self.session, self.conversation, self.catalog)
        return Ports(
            choices={
                "departments": self.departments,
                "consents": self.consents,
                "channels": self.channels,
                "surveys": self.surveys,
                **booking.choices(),
            },
            actions={
                "identify_patient": self.identify_patient,
                "set_preferred_channel": self.set_channel,
                **booking.actions(),
            },
            surveys=self,
        )

    def _patient(self) -> Patient | None:
        pid = self.conversation.patient_id
        return self.session.get(Patient, pid) if pid else None

    # --- choice sources ------------------------------------------------------------------------
    def departments(self, slots: Mapping[str, Any], lang: str) -> Sequence[DynamicChoice]:
        rows = self.session.scalars(sa.select(Department).order_by(Department.name)).all()
        return [DynamicChoice(str(d.id), d.name_in(lang)) for d in rows]

    def consents(self, slots: Mapping[str, Any], lang: str) -> Sequence[DynamicChoice]:
        patient = self._patient()
        if patient is None:
            return []
        now = current_consents(self.session, patient.id)
        found = []
        for purpose in ConsentPurpose:
            event = now.get((purpose, self.conversation.channel))
            status = "never" if event is None else "granted" if event.granted else "revoked"
            label = self.catalog.text(
                lang,
                "consent.status_line",
                purpose=self.catalog.text(lang, f"consent.purpose_{purpose.value}"),
                status=self.catalog.text(lang, f"consent.status_{status}"),
            )
            found.append(DynamicChoice(purpose.value, label))
        return found

    def channels(self, slots: Mapping[str, Any], lang: str) -> Sequence[DynamicChoice]:
        patient = self._patient()
        if patient is None:
            return []
        reachable = [
            (Channel.WECHAT, patient.wechat_openid_bidx),
            (Channel.SMS, patient.phone_bidx),
            (Channel.WHATSAPP, patient.whatsapp_bidx),
            (Channel.EMAIL, None if patient.email_bounced else patient.email_bidx),
            (Channel.WEBCHAT, self.conversation.channel is Channel.WEBCHAT or None),
        ]
        return [
            DynamicChoice(channel.value, self.catalog.text(lang, f"channel_name.{channel.value}"))
            for channel, address in reachable
            if address
        ]

    def surveys(self, slots: Mapping[str, Any], lang: str) -> Sequence[DynamicChoice]:
        if self._patient() is None:
            return []
        ids = self.session.scalars(
            sa.select(QuestionnaireVersion.questionnaire_id)
            .distinct()
            .order_by(QuestionnaireVersion.questionnaire_id)
        ).all()
        found = []
        for qid in ids:
            q = self.questionnaire(qid)
            if q is not None and q.kind.value in CHAT_SURVEY_KINDS:
                found.append(DynamicChoice(q.id, _texts(q.title, lang)))
        return found

    # --- actions -------------------------------------------------------------------------------
    def identify_patient(self, slots: Mapping[str, Any], lang: str) -> ActionResult:
        conversation = self.conversation
        key = f"{conversation.channel.value}:{conversation.address}"
        try:
            patient = do_identify(
                self.session,
                key=key,
                birth_date=date.fromisoformat(str(slots["birth_date"])),
                phone=slots.get("phone"),
                mrn=slots.get("mrn"),
            )
        except Throttled:
            return ActionResult("throttled", FORGET_IDENTIFIERS)
        if patient is None:
            return ActionResult("not_found", FORGET_IDENTIFIERS)
        other_wechat = (
            conversation.channel is Channel.WECHAT
            and patient.wechat_openid_bidx is not None
            and patient.wechat_openid_bidx != conversation.address
        )
        if (conversation.patient_id not in (None, patient.id)) or other_wechat:
            audit.record(
                self.session, "conversation.identify_refused", subject=("conversation", conversation.id)
            )
            return ActionResult("refused", FORGET_IDENTIFIERS)
        identified = conversation.patient_id is None
        if conversation.reply_to and patient.wechat_openid_bidx is None:
            # A WeChat follower identified in chat: bind the openid as the bind page does (adopting the
            # follower's conversations, with their consent answers, and scanned departments).
            try:
                do_bind_wechat(
                    self.session,
                    patient_id=patient.id,
                    openid=conversation.reply_to,
                    method=BindMethod.BIRTH_DATE,
                )
            except BindRefused:
                audit.record(
                    self.session, "conversation.identify_refused", subject=("conversation", conversation.id)
                )
                return ActionResult("refused", FORGET_IDENTIFIERS)
        if identified:
            conversation.patient_id = patient.id
            audit.record(
                self.session,
                "conversation.identified",
                patient_id=patient.id,
                subject=("conversation", conversation.id),
                channel=conversation.channel.value,
            )
        return ActionResult("bound", FORGET_IDENTIFIERS)

    def set_channel(self, slots: Mapping[str, Any], lang: str) -> ActionResult:
        patient = self._patient()
        if patient is None or not slots.get("preferred_channel"):
            return ActionResult("skipped")
        channel = Channel(str(slots["preferred_channel"]))
        row = self.session.get(ChannelPreference, patient.id)
        source = f"{self.conversation.channel.value}:registration"
        if row is None:
            self.session.add(ChannelPreference(patient_id=patient.id, channel=channel, source=source))
        else:
            row.channel, row.source, row.updated_at = channel, source, utcnow()
        audit.record(
            self.session,
            "patient.preferred_channel",
            patient_id=patient.id,
            subject=("patient", patient.id),
            channel=channel.value,
        )
        return ActionResult("saved")

    # --- surveys -------------------------------------------------------------------------------
    def questionnaire(self, questionnaire_id: str) -> Questionnaire | None:
        # asked more than once a turn (the answer, then the next item): one query per turn (these ports live
        # for one turn, so a version published meanwhile is seen by the next turn)
        if questionnaire_id not in self._questionnaires:
            row = latest_version(self.session, questionnaire_id)
            self._questionnaires[questionnaire_id] = definition_of(row) if row is not None else None
        return self._questionnaires[questionnaire_id]

    def answer_messages(self) -> Mapping[str, Mapping[str, str]]:
        return load_answer_messages(self.content_dir)


def _names() -> tuple[frozenset[str], frozenset[str]]:
    # the ports' own tables, read without a conversation (building them stores their arguments, no more):
    # the names a flow's `action:` and `choices_from:` may use, for the studio's validation
    ports = DatabasePorts(cast(Session, None), cast(Conversation, None), cast(Catalog, None), Path()).ports()
    return frozenset(ports.actions), frozenset(ports.choices)


ACTIONS, CHOICE_SOURCES = _names()
