"""Talking to any flow without a channel (`careloop chat`, the editors' page): the same engine and ports,
inside a transaction that is always rolled back, so a simulation changes nothing in the database.

Effects (consent, hand-off, feedback, survey) are listed, not applied. The simulated conversation is a
web chat one; registering in it binds the simulated conversation only, for the rest of the simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.dialogue.content import ContentFlows, load_catalog
from backend.dialogue.flow_ports import DatabasePorts
from backend.dialogue.understanding import reading_of
from backend.models import Conversation
from backend.models.base import utcnow
from bots.domain import Channel, pick_language
from bots.engine import ConversationState, TurnResult, take_turn
from bots.messages import Inbound, InboundKind

SIMULATOR_ADDRESS = "simulator"


@dataclass
class Simulation:
    """Everything a simulation carries between turns (JSON: the staff page keeps it in the form)."""

    flow_id: str
    lang: str
    state: dict[str, Any] | None = None
    patient_id: int | None = None
    turns: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "flow_id": self.flow_id,
            "lang": self.lang,
            "state": self.state,
            "patient_id": self.patient_id,
            "turns": self.turns,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Simulation:
        return cls(
            flow_id=str(data["flow_id"]),
            lang=pick_language(str(data.get("lang") or "en")),
            state=data.get("state"),
            patient_id=data.get("patient_id"),
            turns=int(data.get("turns") or 0),
        )


def simulate_turn(
    session: Session, sim: Simulation, text: str = "", choice: str | None = None, now: datetime | None = None
) -> TurnResult:
    """One turn (the first one when sim.state is None); rolls back whatever the ports wrote."""
    settings = get_settings()
    library = ContentFlows(settings.content_dir)
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    flow = library.get(sim.flow_id)  # KeyError for an unknown flow: the caller says so
    now = now or utcnow()
    try:
        conversation = Conversation(
            patient_id=sim.patient_id, channel=Channel.WEBCHAT, address=SIMULATOR_ADDRESS, created_at=now
        )
        session.add(conversation)
        session.flush()
        ports = DatabasePorts(session, conversation, catalog, settings.content_dir).ports()
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
        sim.patient_id = conversation.patient_id
    finally:
        session.rollback()
    sim.state = result.state.to_json()
    if result.state.lang:
        sim.lang = result.state.lang
    return result
