"""What staff see of a patient's calls: each call's outcome, duration and per-question transcripts with
question texts in the staff member's language, and which recordings can be played."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import VoiceCall
from backend.voice.calls import UnknownCall, response_of
from bots.domain import pick_language


@dataclass(frozen=True)
class TranscriptLine:
    index: int
    item: str
    question: str
    heard: str
    confidence: float | None
    via: str
    has_audio: bool


@dataclass(frozen=True)
class CallRow:
    call: VoiceCall
    questionnaire: str
    lines: list[TranscriptLine]
    has_recording: bool  # at the gateway (Twilio): played through our authenticated proxy


def _question(q: Any, item_id: str, lang: str) -> str:
    try:
        texts = q.item(item_id).text
    except KeyError:
        return item_id
    return str(texts.get(lang) or texts.get("en") or item_id) if texts else item_id


def patient_calls(session: Session, patient_id: int, staff_language: str, limit: int = 50) -> list[CallRow]:
    lang = pick_language(staff_language)
    rows = []
    for call in session.scalars(
        sa.select(VoiceCall)
        .where(VoiceCall.patient_id == patient_id)
        .order_by(VoiceCall.created_at.desc(), VoiceCall.id.desc())
        .limit(limit)
    ):
        try:
            response, q = response_of(session, call)
            title, definition = str(q.title.get(lang) or response.questionnaire_id), q
        except UnknownCall:
            title, definition = "", None
        lines = [
            TranscriptLine(
                index=i,
                item=str(t.get("item", "")),
                question=_question(definition, str(t.get("item", "")), lang) if definition else "",
                heard=str(t.get("heard") or ""),
                confidence=t.get("confidence"),
                via=str(t.get("via") or ""),
                has_audio=bool(t.get("audio")),
            )
            for i, t in enumerate(call.transcripts or [])
        ]
        rows.append(CallRow(call, title, lines, bool(call.recording_url)))
    return rows
