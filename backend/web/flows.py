"""Staff pages for content editors: flows with drop-off per step, and a simulator to talk to any flow."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from backend.content.flow_library import DatabaseFlows
from backend.dialogue.simulator import Simulation, simulate_turn
from backend.security.permissions import Permission, may
from backend.services.flow_report import drop_off
from backend.services.ids import MAX_ID
from backend.web.deps import SessionDep, SettingsDep, StaffDep
from backend.web.staff import check_csrf, render
from bots.domain import LANGUAGES, pick_language
from bots.flows import FlowError
from bots.messages import Choices, Text

router = APIRouter(prefix="/staff")
MAX_TRANSCRIPT = 200  # lines kept on the simulator page


def _denied(request: Request, staff: StaffDep) -> Response | None:
    if may(staff.staff, Permission.FLOWS_VIEW):
        return None
    return render(request, "staff/denied.html", staff.staff.language, {"staff": staff}, 403)


@router.get("/flows", response_class=HTMLResponse)
def flows_page(
    request: Request, db: SessionDep, staff: StaffDep, settings: SettingsDep, flow: str | None = None
) -> Response:
    denied = _denied(request, staff)
    if denied is not None:
        return denied
    library = DatabaseFlows(db, settings.content_dir)
    flows = []
    for flow_id in library.ids():
        try:
            flows.append(library.get(flow_id))
        except (KeyError, FlowError):
            continue
    chosen = next((f for f in flows if f.id == flow), None)
    rows = drop_off(db, chosen) if chosen is not None else []
    return render(
        request,
        "staff/flows.html",
        staff.staff.language,
        {"staff": staff, "flows": flows, "chosen": chosen, "rows": rows, "languages": LANGUAGES},
    )


def _lines(result: Any) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for reply in result.replies:
        for part in reply.parts:
            if isinstance(part, Text):
                lines.append({"who": "bot", "text": part.text})
            elif isinstance(part, Choices):
                lines.append({"who": "choices", "options": [[c.payload, c.label] for c in part.options]})
    lines += [{"who": "effect", "text": str(effect)} for effect in result.effects]
    if result.state.ended:
        lines.append({"who": "effect", "text": "ended"})
    return lines


def _simulate(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    sim: Simulation,
    transcript: list[Any],
    text: str,
    choice: str | None,
) -> Response:
    try:
        result = simulate_turn(db, sim, text=text, choice=choice)
    except KeyError:
        return render(
            request, "staff/denied.html", staff.staff.language, {"staff": staff, "missing": True}, 404
        )
    if text or choice:
        transcript.append({"who": "you", "text": text or choice})
    transcript.extend(_lines(result))
    last_choices = next((line for line in reversed(transcript) if line["who"] == "choices"), None)
    return render(
        request,
        "staff/simulator.html",
        staff.staff.language,
        {
            "staff": staff,
            "sim": sim,
            "sim_json": json.dumps(sim.to_json()),
            "transcript": transcript[-MAX_TRANSCRIPT:],
            "transcript_json": json.dumps(transcript[-MAX_TRANSCRIPT:]),
            "choices": last_choices["options"] if last_choices and not result.state.ended else [],
            "ended": result.state.ended,
        },
    )


@router.get("/flows/simulate", response_class=HTMLResponse)
def simulator_start(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    flow: str = "main_menu",
    lang: str = "en",
    revision: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    texts: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> Response:
    """`revision`, `texts`: preview a draft of the flow and of the texts (the studio's flow editor)."""
    denied = _denied(request, staff)
    if denied is not None:
        return denied
    sim = Simulation(flow_id=flow, lang=pick_language(lang), flow_revision=revision, texts_revision=texts)
    return _simulate(request, db, staff, sim, [], "", None)


@router.post("/flows/simulate", response_class=HTMLResponse)
def simulator_turn(
    request: Request,
    db: SessionDep,
    staff: StaffDep,
    csrf_token: str = Form(max_length=128),
    sim: str = Form(max_length=65536),
    transcript: str = Form(default="[]", max_length=262144),
    text: str = Form(default="", max_length=4096),
    choice: str | None = Form(default=None, max_length=256),
) -> Response:
    denied = _denied(request, staff)
    if denied is not None:
        return denied
    check_csrf(staff, csrf_token)
    try:
        simulation = Simulation.from_json(json.loads(sim))
        lines = json.loads(transcript)
        if not isinstance(lines, list):
            raise ValueError("transcript")
    except (ValueError, KeyError, TypeError):
        return render(
            request, "staff/denied.html", staff.staff.language, {"staff": staff, "missing": True}, 422
        )
    return _simulate(request, db, staff, simulation, lines, text.strip(), choice or None)
