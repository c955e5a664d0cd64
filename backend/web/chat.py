"""Patient web chat: `/c/<token>` page, posting messages, fetching new ones."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from backend.app.db import session_scope
from backend.app.jobs import runs_inline
from backend.app.settings import Settings, get_settings
from backend.content.catalogue import catalog_at, current_catalog
from backend.dialogue.content import load_catalog
from backend.dialogue.turns import InlineTurnFailed, queue_turn, run_turn_in
from backend.i18n import negotiate
from backend.messaging.links import (
    LinkExpired,
    LinkInvalid,
    LinkKind,
    open_short,
    read_token,
    render_links,
    render_outbound,
)
from backend.models import Conversation, Direction, MessageStatus, Patient, Role
from backend.models.base import utcnow
from backend.outbox.sender import kick
from backend.services.conversations import (
    MessageView,
    get_or_create_conversation,
    messages_after,
    store_inbound_row,
)
from backend.services.ids import parse_id
from backend.web import patient_pages
from backend.web.deps import SessionDep, SettingsDep, templates
from backend.web.ids import IdQuery
from bots.catalog import Catalog
from bots.domain import Channel, pick_language
from bots.messages import Outbound
from channels import webchat

router = APIRouter()


class _Refusal(Exception):
    def __init__(self, status: int, key: str, lang: str) -> None:
        self.status, self.key, self.lang = status, key, lang


@dataclass(frozen=True)
class _LinkedPatient:
    """What the chat routes need of the patient a link names (no full record: nothing to decrypt)."""

    id: int
    language: str


_LINKED_PATIENT = sa.select(Patient.id, Patient.language).where(Patient.id == sa.bindparam("id"))


def _patient_for(db: Session, settings: Settings, token: str) -> _LinkedPatient:
    try:
        patient_id = read_token(settings, LinkKind.CHAT, token, settings.chat_link_days * 86400)
    except LinkExpired as exc:
        raise _Refusal(410, "chat.link_expired", settings.default_language) from exc
    except LinkInvalid as exc:
        raise _Refusal(404, "chat.link_invalid", settings.default_language) from exc
    row = db.connection().execute(_LINKED_PATIENT, {"id": patient_id}).first()
    if row is None:
        raise _Refusal(404, "chat.link_invalid", settings.default_language)
    return _LinkedPatient(row.id, row.language)


def texts_of(db: Session, pinned: int | None) -> Catalog:
    """The texts of the conversation's run; before its first turn, those published now."""
    return catalog_at(db, pinned) if pinned is not None else current_catalog(db)


def _refusal_page(request: Request, settings: Settings, refusal: _Refusal) -> Response:
    # A refused link says nothing trustworthy about the patient: speak the browser's language.
    catalog = load_catalog(settings.content_dir, settings.hospital_name)
    accept = request.headers.get("accept-language")
    lang = negotiate(accept) if accept else pick_language(refusal.lang)
    return templates.TemplateResponse(
        request,
        "chat/refused.html",
        {"lang": lang, "title": catalog.text(lang, "chat.title"), "message": catalog.text(lang, refusal.key)},
        status_code=refusal.status,
    )


def _items(
    db: Session, conversation_id: int, after: int, catalog: Catalog, lang: str
) -> list[dict[str, Any]]:
    rows = messages_after(db, conversation_id, after)
    return [
        _item(m, catalog, lang).to_json()
        for m in rows
        if not (m.provider_message_id or "").startswith("start:")
    ]


def _item(m: MessageView, catalog: Catalog, lang: str) -> webchat.PageItem:
    """A message as the patient sees it, labelled with who wrote it: a person (with their role) or the bot.
    Link references in it become links here, on the patient's own page (stored messages hold none)."""
    if m.direction is Direction.INBOUND:
        return webchat.render(m.id, True, m.text, m.parts)
    settings = get_settings()
    text = render_links(settings, m.text, Channel.WEBCHAT)
    parts = (
        render_outbound(settings, Outbound.from_json(m.parts), Channel.WEBCHAT).to_json()
        if m.parts
        else m.parts
    )
    m = replace(m, text=text, parts=parts)
    if m.staff_role is None:
        by = catalog.text(lang, "chat.by_bot")
        return webchat.render(m.id, False, m.text, m.parts, author=webchat.Author.BOT, by=by)
    role = catalog.text(lang, f"chat.role.{_PATIENT_FACING_ROLE.get(m.staff_role, 'staff')}")
    by = catalog.text(lang, "chat.by_staff", role=role)
    return webchat.render(m.id, False, m.text, m.parts, author=webchat.Author.STAFF, by=by)


# What a patient is told about who answered: clinical roles by name, everyone else as the care team.
_PATIENT_FACING_ROLE: dict[str, str] = {Role.NURSE: "nurse", Role.DOCTOR: "doctor"}


def _conversation(db: Session, patient: _LinkedPatient, *, lock: bool = False) -> Conversation:
    return get_or_create_conversation(
        db, patient_id=patient.id, channel=Channel.WEBCHAT, address=webchat.address_for(patient.id), lock=lock
    )


@router.get("/c/{token}", response_class=HTMLResponse)
def chat_page(token: str, request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    try:
        patient = _patient_for(db, settings, token)
    except _Refusal as refusal:
        return _refusal_page(request, settings, refusal)
    conversation = _conversation(db, patient)
    started = webchat.conversation_started(patient.id, conversation.id, utcnow())
    _, is_new = store_inbound_row(db, conversation.id, started, MessageStatus.RECEIVED)
    db.commit()
    if is_new:
        queue_turn(conversation.id)
    lang = pick_language(patient.language)
    db.refresh(conversation)  # the greeting turn (inline) pinned the texts
    catalog = texts_of(db, conversation.texts_revision)
    client_id = webchat.new_client_id()
    return templates.TemplateResponse(
        request,
        "chat/page.html",
        {
            "lang": lang,
            "token": token,
            "items": _items(db, conversation.id, 0, catalog, lang),
            "new_messages": catalog.text(lang, "chat.new_messages"),
            "client_id": client_id,
            "tools": patient_pages.tools(catalog, lang, action=f"/c/{token}/messages", client_id=client_id),
            "in_wechat": patient_pages.in_wechat(request),
            "title": catalog.text(lang, "chat.title"),
            "placeholder": catalog.text(lang, "chat.placeholder"),
            "send": catalog.text(lang, "chat.send"),
            "max_chars": settings.max_message_bytes,
        },
    )


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


@router.post("/c/{token}/messages")
async def post_message(token: str, request: Request) -> Response:
    """The busiest patient request. An async endpoint that reads the form on the event loop and does
    all its database work in one worker-thread call (a sync endpoint with a generator session
    dependency costs three thread hops and FastAPI's form model; together about a third of the
    request's CPU)."""
    form = await request.form(max_files=0, max_fields=8, max_part_size=_MAX_FIELD)
    fields: dict[str, str] = {}
    for name in ("text", "choice", "client_id", "after"):
        value = form.get(name)
        if value is not None and not isinstance(value, str):
            message = f"{name}: not a text field"
            return JSONResponse({"error": "bad_message", "message": message}, status_code=422)
        if value is not None:
            fields[name] = value
    after = parse_id(fields.get("after") or "0")
    if after is None:
        return JSONResponse({"error": "bad_message", "message": "after: not a number"}, status_code=422)
    return await run_in_threadpool(_post_message, token, request, fields, after)


_MAX_FIELD = 65536


def _post_message(token: str, request: Request, fields: dict[str, str], after: int) -> Response:
    settings = get_settings()
    with session_scope() as db:
        try:
            patient = _patient_for(db, settings, token)
        except _Refusal as refusal:
            return _refusal_page(request, settings, refusal)
        lang = pick_language(patient.language)
        try:
            inbound = webchat.inbound_from_post(
                patient_id=patient.id,
                text=fields.get("text"),
                choice=fields.get("choice"),
                client_id=fields.get("client_id"),
                received_at=utcnow(),
                max_bytes=settings.max_message_bytes,
            )
        except webchat.MessageTooLong:
            catalog = current_catalog(db)
            message = catalog.text(lang, "chat.message_too_long", limit=settings.max_message_bytes)
            return JSONResponse({"error": "message_too_long", "message": message}, status_code=413)
        except webchat.BadPost as exc:
            return JSONResponse({"error": "bad_message", "message": str(exc)}, status_code=422)
        inline = runs_inline()
        # Inline, lock before storing, so messages of one conversation are numbered and handled in the
        # order their turns run; then one transaction stores the inbound and the turn's replies.
        conversation = _conversation(db, patient, lock=inline)
        # inline, the turn moves last_message_at in its own UPDATE of the conversation (not twice)
        _, is_new = store_inbound_row(db, conversation.id, inbound, MessageStatus.RECEIVED, touch=not inline)
        queued: list[int] = []
        if inline and is_new:
            try:
                queued = run_turn_in(db, conversation, language=patient.language)
            except InlineTurnFailed:
                # the failed turn took the stored inbound with it: store it alone for the retry sweep
                db.rollback()
                conversation = _conversation(db, patient)
                store_inbound_row(db, conversation.id, inbound, MessageStatus.RECEIVED)
        wants_json = _wants_json(request)
        catalog = texts_of(db, conversation.texts_revision)
        # read in this transaction
        items = _items(db, conversation.id, after, catalog, lang) if wants_json else []
        conversation_id = conversation.id
    for item_id in queued:
        kick(item_id)
    if is_new and not inline:
        queue_turn(conversation_id)
    if wants_json:
        return JSONResponse({"items": items, "duplicate": not is_new})
    return RedirectResponse(f"/c/{token}", status_code=303)


@router.get("/c/{token}/messages")
def get_messages(
    token: str, request: Request, db: SessionDep, settings: SettingsDep, after: IdQuery = 0
) -> Response:
    try:
        patient = _patient_for(db, settings, token)
    except _Refusal as refusal:
        return JSONResponse({"error": refusal.key}, status_code=refusal.status)
    found = db.execute(
        sa.select(Conversation.id, Conversation.texts_revision)
        .where(Conversation.patient_id == patient.id, Conversation.channel == Channel.WEBCHAT)
        .order_by(Conversation.id.desc())
        .limit(1)
    ).first()
    conversation_id, pinned = found if found is not None else (None, None)
    catalog = texts_of(db, pinned)
    lang = pick_language(patient.language)
    items = _items(db, conversation_id, after, catalog, lang) if conversation_id else []
    return JSONResponse({"items": items})


@router.get("/s/{code}")
def short_link(code: str, request: Request, settings: SettingsDep) -> Response:
    """A short link from an SMS: check it, then send the browser on to the full chat or form link."""
    try:
        url = open_short(settings, code)
    except LinkExpired:
        return _refusal_page(request, settings, _Refusal(410, "chat.link_expired", settings.default_language))
    except LinkInvalid:
        return _refusal_page(request, settings, _Refusal(404, "chat.link_invalid", settings.default_language))
    return RedirectResponse(url, status_code=303)
