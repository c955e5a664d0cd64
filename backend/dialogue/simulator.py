"""Talking to any flow without a channel (`careloop chat`, the editors' page): the same engine and ports,
inside a transaction that is always rolled back, so a simulation changes nothing in the database.

Effects (consent, hand-off, feedback, survey) are listed, not applied. The simulated conversation is a
web chat one. On the editors' page it never reaches a real patient: registering in it binds a synthetic
patient made inside the same rolled-back transaction (whatever phone or birth date is typed), and the
page's state carries no patient id. Only `careloop chat --patient` (an operator with the database in hand)
simulates as a real patient.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content.catalogue import current_catalog, draft_catalog
from backend.content.flow_library import DatabaseFlows, draft_at
from backend.dialogue.flow_ports import FORGET_IDENTIFIERS, DatabasePorts
from backend.dialogue.understanding import reading_of
from backend.models import Conversation, Patient
from backend.models.base import utcnow
from bots.domain import Channel, pick_language
from bots.engine import ConversationState, TurnResult, take_turn
from bots.messages import Inbound, InboundKind
from bots.ports import Action, ActionResult, Slots

SIMULATOR_ADDRESS = "simulator"
SYNTHETIC_NAME = "Simulated patient"
SYNTHETIC_MRN = "SIMULATED"
SYNTHETIC_BIRTH_DATE = date(1970, 1, 1)


@dataclass
class Simulation:
    """Everything a simulation carries between turns (JSON: the staff page keeps it in the form)."""

    flow_id: str
    lang: str
    state: dict[str, Any] | None = None
    # previewing drafts: this revision of the flow (any state) and of the texts; None: the published ones
    flow_revision: int | None = None
    texts_revision: int | None = None
    patient_id: int | None = None  # a real patient: the command line only, never from JSON
    synthetic: bool = False  # registered in the simulation: a synthetic patient stands in
    turns: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "flow_id": self.flow_id,
            "lang": self.lang,
            "state": self.state,
            "flow_revision": self.flow_revision,
            "texts_revision": self.texts_revision,
            "synthetic": self.synthetic,
            "turns": self.turns,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Simulation:
        """The state a page sent back. A patient id in it is ignored: the page is the client's to edit."""
        return cls(
            flow_id=str(data["flow_id"]),
            lang=pick_language(str(data.get("lang") or "en")),
            state=data.get("state"),
            flow_revision=_number(data.get("flow_revision")),
            texts_revision=_number(data.get("texts_revision")),
            synthetic=bool(data.get("synthetic")),
            turns=int(data.get("turns") or 0),
        )


def _number(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _library(session: Session, sim: Simulation) -> DatabaseFlows:
    """The published flows, with the flow's draft revision in its place when one is previewed; KeyError
    for an unknown flow or revision."""
    settings = get_settings()
    drafts = {}
    if sim.flow_revision is not None:
        drafts[sim.flow_id] = draft_at(session, sim.flow_id, sim.flow_revision)
    return DatabaseFlows(session, settings.content_dir, drafts)


def _synthetic_patient(session: Session, sim: Simulation, now: datetime) -> Patient:
    settings = get_settings()
    patient = Patient(
        mrn=SYNTHETIC_MRN,
        mrn_bidx=f"simulator-{secrets.token_hex(8)}",  # rolled back with the rest
        name=SYNTHETIC_NAME,
        birth_date=SYNTHETIC_BIRTH_DATE,
        language=sim.lang,
        timezone=settings.default_timezone,
        created_at=now,
    )
    session.add(patient)
    session.flush()
    return patient


def _identify_synthetic(
    session: Session, sim: Simulation, conversation: Conversation, now: datetime
) -> Action:
    """Registration in a simulation: no lookup of the identifiers typed, a synthetic patient instead."""

    def identify(slots: Slots, lang: str) -> ActionResult:
        if conversation.patient_id is None:
            conversation.patient_id = _synthetic_patient(session, sim, now).id
        sim.synthetic = True
        return ActionResult("bound", FORGET_IDENTIFIERS)

    return identify


def simulate_turn(
    session: Session, sim: Simulation, text: str = "", choice: str | None = None, now: datetime | None = None
) -> TurnResult:
    """One turn (the first one when sim.state is None); rolls back whatever the ports wrote."""
    settings = get_settings()
    library = _library(session, sim)
    catalog = (
        current_catalog(session) if sim.texts_revision is None else draft_catalog(session, sim.texts_revision)
    )
    flow = library.get(sim.flow_id)  # KeyError for an unknown flow: the caller says so
    now = now or utcnow()
    try:
        patient_id = sim.patient_id
        if patient_id is None and sim.synthetic:
            patient_id = _synthetic_patient(session, sim, now).id
        conversation = Conversation(
            patient_id=patient_id, channel=Channel.WEBCHAT, address=SIMULATOR_ADDRESS, created_at=now
        )
        session.add(conversation)
        session.flush()
        ports = DatabasePorts(session, conversation, catalog, settings.content_dir).ports()
        if sim.patient_id is None:
            identify = _identify_synthetic(session, sim, conversation, now)
            ports = replace(ports, actions={**ports.actions, "identify_patient": identify})
        state = ConversationState.from_json(sim.state) if sim.state else None
        sim.turns += 1
        inbound = Inbound(
            channel=Channel.WEBCHAT,
            sender=SIMULATOR_ADDRESS,
            provider_message_id=f"sim-{sim.turns}",
            received_at=now,
            text=text,
            choice=choice,
            kind=InboundKind.CONVERSATION_STARTED if state is None else InboundKind.MESSAGE,
        )
        result = take_turn(
            flow, state, inbound, sim.lang, catalog, understand=reading_of, library=library, ports=ports
        )
        if sim.patient_id is not None:
            sim.patient_id = conversation.patient_id
    finally:
        session.rollback()
    sim.state = result.state.to_json()
    if result.state.lang:
        sim.lang = result.state.lang
    return result
