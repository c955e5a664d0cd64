"""Shared builders for the engine tests: the authored flows and catalogue, in-memory ports, a driver."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bots.catalog import Catalog
from bots.domain import LANGUAGES, Channel
from bots.engine import ConversationState, TurnResult, take_turn
from bots.flows import Flow, parse_flow
from bots.messages import Choices, Inbound, InboundKind, Outbound
from bots.ports import ActionResult, DictLibrary, DynamicChoice, Ports, Reading, Understand
from questionnaires.loader import parse_questionnaire
from questionnaires.model import Questionnaire

ROOT = Path(__file__).resolve().parents[2] / "content"
DIALOGUES = ROOT / "dialogues"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _messages(lang: str) -> dict[str, Any]:
    table: dict[str, Any] = {}
    base = DIALOGUES / "messages"
    for path in [base / f"{lang}.yaml", *sorted(base.glob(f"*/{lang}.yaml"))]:
        table.update(yaml.safe_load(path.read_text(encoding="utf-8")))
    return table


CATALOG = Catalog.merge({lang: _messages(lang) for lang in LANGUAGES}, defaults={"hospital": "Test Hospital"})


def authored(flow_id: str) -> Flow:
    return parse_flow(yaml.safe_load((DIALOGUES / f"{flow_id}.yaml").read_text(encoding="utf-8")))


def authored_flows() -> list[Flow]:
    return [authored(p.stem) for p in sorted(DIALOGUES.glob("*.yaml"))]


def questionnaire(qid: str) -> Questionnaire:
    return parse_questionnaire(yaml.safe_load((ROOT / "questionnaires" / f"{qid}.yaml").read_text()))


ANSWER_MESSAGES = {
    lang: yaml.safe_load((ROOT / "questionnaires" / "messages" / f"{lang}.yaml").read_text())
    for lang in LANGUAGES
}


@dataclass
class Surveys:
    table: Mapping[str, Questionnaire]

    def questionnaire(self, questionnaire_id: str) -> Questionnaire | None:
        return self.table.get(questionnaire_id)

    def answer_messages(self) -> Mapping[str, Mapping[str, str]]:
        return ANSWER_MESSAGES


@dataclass
class World:
    """What the ports see: the outside world of a conversation, held in memory."""

    departments: list[tuple[str, str]] = field(
        default_factory=lambda: [("7", "Cardiology"), ("9", "Surgery")]
    )
    consents: list[tuple[str, str]] = field(default_factory=lambda: [("care", "Care: given")])
    surveys: list[tuple[str, str]] = field(default_factory=lambda: [("nps", "Would you recommend us?")])
    identify_outcome: str = "bound"
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def source(self, name: str) -> Callable[[Mapping[str, Any], str], Sequence[DynamicChoice]]:
        def choices(slots: Mapping[str, Any], lang: str) -> Sequence[DynamicChoice]:
            return [DynamicChoice(i, label) for i, label in getattr(self, name)]

        return choices

    def identify(self, slots: Mapping[str, Any], lang: str) -> ActionResult:
        self.calls.append(("identify_patient", dict(slots)))
        return ActionResult(self.identify_outcome, {"phone": None, "mrn": None, "birth_date": None})

    def set_channel(self, slots: Mapping[str, Any], lang: str) -> ActionResult:
        self.calls.append(("set_preferred_channel", dict(slots)))
        return ActionResult("saved")

    def ports(self) -> Ports:
        return Ports(
            choices={
                "departments": self.source("departments"),
                "consents": self.source("consents"),
                "surveys": self.source("surveys"),
                "channels": lambda slots, lang: [
                    DynamicChoice("sms", "SMS"),
                    DynamicChoice("wechat", "WeChat"),
                ],
            },
            actions={"identify_patient": self.identify, "set_preferred_channel": self.set_channel},
            surveys=Surveys(
                {
                    "nps": questionnaire("nps"),
                    "outpatient_satisfaction": questionnaire("outpatient_satisfaction"),
                }
            ),
        )


def inbound(text: str = "", choice: str | None = None, kind: InboundKind = InboundKind.MESSAGE) -> Inbound:
    return Inbound(Channel.WEBCHAT, "web:1", f"id-{text}-{choice}", T0, text=text, choice=choice, kind=kind)


def texts(replies: list[Outbound]) -> list[str]:
    return [r.text for r in replies if r.text]


def choices(replies: list[Outbound]) -> list[str]:
    """Payloads of the last choices offered."""
    found: list[str] = []
    for reply in replies:
        for part in reply.parts:
            if isinstance(part, Choices):
                found = [c.payload for c in part.options]
    return found


class Chat:
    """Drives one conversation turn by turn, checking after each turn that the state is plain JSON."""

    def __init__(
        self,
        flow: str | Flow = "main_menu",
        lang: str = "en",
        *,
        library: Any = None,
        world: World | None = None,
        understand: Understand | None = None,
    ) -> None:
        self.library = library or DictLibrary.of(*authored_flows())
        self.flow = flow if isinstance(flow, Flow) else self.library.get(flow)
        self.lang = lang
        self.world = world or World()
        self.ports = self.world.ports()
        self.understand = understand
        self.state: ConversationState | None = None
        self.effects: list[Any] = []
        self.visits: list[tuple[str, int, str]] = []
        self.last = self.turn(kind=InboundKind.CONVERSATION_STARTED)

    def turn(
        self, text: str = "", choice: str | None = None, kind: InboundKind = InboundKind.MESSAGE
    ) -> TurnResult:
        result = take_turn(
            self.flow,
            self.state,
            inbound(text, choice, kind),
            self.lang,
            CATALOG,
            self.understand,
            library=self.library,
            ports=self.ports,
        )
        # the state must survive a restart: through JSON and back, as the database stores it
        self.state = ConversationState.from_json(json.loads(json.dumps(result.state.to_json())))
        self.effects.extend(result.effects)
        self.visits.extend((v.flow_id, v.flow_version, v.step) for v in result.visits)
        self.last = result
        return result

    def say(self, text: str) -> TurnResult:
        return self.turn(text)

    def press(self, payload: str) -> TurnResult:
        return self.turn(choice=payload)

    @property
    def where(self) -> tuple[str, str]:
        assert self.state is not None
        return self.state.flow_id, self.state.step


def understands(table: Mapping[str, str | Reading]) -> Understand:
    def understand(text: str) -> str | Reading | None:
        return table.get(text)

    return understand
