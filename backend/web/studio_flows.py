"""The studio's flow editor: a revision's steps as an outline with the texts they say in the editor's
language, a graph of where each step goes with the drop-off of real conversations on it, forms to edit a
draft's steps, its problems on save (and as the editor types, through /check), a read-only YAML view and
the simulator on the draft. The lifecycle buttons, history and diff are the studio's own routes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from markupsafe import Markup
from sqlalchemy.orm import Session

from backend.app import yaml_files
from backend.app.settings import get_settings
from backend.content import flow_form, flow_svg
from backend.content import new_flow as nf
from backend.content import revisions as rv
from backend.content.catalogue import current_catalog, latest_draft
from backend.content.flow_library import flow_at, known
from backend.content.flows import KIND, validate
from backend.content.kinds import problems as kind_problems
from backend.i18n import translations
from backend.models import ContentItem, ContentRevision, StaffSession
from backend.services.flow_report import StepRow, drop_off
from backend.web.deps import SessionDep, SettingsDep, StaffDep
from backend.web.filtered import FormDep
from backend.web.staff import check_csrf, render
from backend.web.studio import denied, item_url, revision_of, save_typed_draft
from backend.web.studio_flow_words import how_html, kind_names, problem_html, problem_text
from bots.domain import FALLBACK_LANGUAGE, LANGUAGES, pick_language
from bots.flows import EFFECT_NAMES, ERROR_CODES, FlowError

router = APIRouter(prefix="/staff/studio/items/flows")
# The outline shows this many steps a page, with an index of every step: a 200-step flow's forms all on one
# page took most of its time in Jinja (bench/README.md); the shipped flows (at most 35 steps) fit on one.
PAGE = 40
# Graphs drawn, by revision id and version (a save bumps the version), language, drop-off and the steps
# with problems: a published revision's graph changes only with its drop-off
_GRAPHS: dict[tuple[Any, ...], Markup] = {}
_KEEP_GRAPHS = 64


def clear_cache() -> None:
    _GRAPHS.clear()


def _texts(db: Session, lang: str) -> Any:
    """key -> the published text in `lang` (English when missing), as authored: placeholders unfilled."""
    messages = current_catalog(db).messages
    table, fallback = messages.get(lang, {}), messages.get(FALLBACK_LANGUAGE, {})
    return lambda key: table.get(key) or fallback.get(key, "")


def _drop_off(db: Session, item: ContentItem, revision: ContentRevision) -> tuple[int | None, list[StepRow]]:
    """The revision's own conversations once it was published; a draft shows the revision it came from."""
    number = revision.number if revision.published_at is not None else revision.based_on
    if number is None:
        return None, []
    try:
        return number, drop_off(db, flow_at(db, item.key, number))  # a published revision: parsed once
    except (KeyError, FlowError):
        return None, []


def _percent(row: StepRow) -> str:
    if not row.reached:
        return ""
    return "–" if row.drop_off is None else f"{100 * row.drop_off:.0f}%"


def _editor(
    request: Request,
    db: SessionDep,
    staff: StaffSession,
    item: ContentItem,
    revision: ContentRevision,
    *,
    body: Mapping[str, Any] | None = None,
    error: str = "",
    status: int = 200,
    page: int = 1,
) -> Response:
    shown = revision.body if body is None else body
    lang = pick_language(staff.staff.language)
    known_now = known(db)
    # the kind's check (flow_library.check), with what the site knows read once for it and the page's lists
    problems = validate({**shown, "id": item.key}, known=known_now)
    number, rows = _drop_off(db, item, revision)
    drops = {r.step: _percent(r) for r in rows}
    runs = not any(p.code in ERROR_CODES or p.code == "unknown_step" for p in problems)  # it parses
    troubled = {p.where for p in problems}
    steps = flow_form.outline(shown, _texts(db, lang), problems)
    pages = max(1, -(-len(steps) // PAGE))
    page = min(max(1, page), pages)
    names = kind_names(lang)
    graph_key = (
        get_settings().database_url,
        revision.id,
        revision.version,
        lang,
        tuple(drops.items()),
        frozenset(troubled),
    )
    graph = _GRAPHS.get(graph_key) if body is None else None
    if graph is None:
        graph = flow_svg.svg(
            flow_form.graph(shown, drops),
            troubled=troubled,
            kind_names=names,
            end_word=translations(lang).gettext("end"),
            labelled_by="graph-title graph-note",
        )
        if body is None:  # what was typed and not saved is drawn, never kept
            if len(_GRAPHS) >= _KEEP_GRAPHS:
                _GRAPHS.pop(next(iter(_GRAPHS)))
            _GRAPHS[graph_key] = graph
    context = {
        "staff": staff,
        "item": item,
        "revision": revision,
        "body": shown,
        "steps": steps,
        "page_steps": steps[(page - 1) * PAGE : page * PAGE],
        "page": page,
        "pages": pages,
        "page_size": PAGE,
        "page_of": {s.id: s.n // PAGE + 1 for s in steps},
        "kind_names": names,
        "problems": problems,
        "troubled": troubled,
        "problem_html": lambda p: problem_html(p, lang),
        "how_html": lambda how: how_html(how, lang),
        "graph_svg": graph,
        "drop_rows": rows,
        "drop_number": number,
        "kinds": flow_form.KINDS,
        "inputs": flow_form.INPUTS,
        "keys": sorted(known_now.keys or ()),
        "actions": sorted(known_now.actions or ()),
        "sources": sorted(known_now.sources or ()),
        "flow_ids": sorted(known_now.flows or ()),
        "intents": sorted(known_now.intents or ()),
        "effect_names": sorted(EFFECT_NAMES),
        "langs": LANGUAGES,
        "preview": runs,
        "texts_draft": latest_draft(db),
        "error": error[:64],
        "may_approve": rv.may_approve(db, item, revision, staff.staff) is None,
        "needs_approver": rv.needs_approver(db, item, revision),
    }
    return render(request, "staff/studio/flow.html", staff.staff.language, context, status)


@router.post("/new")
def new_flow(
    request: Request, db: SessionDep, staff: StaffDep, settings: SettingsDep, values: FormDep
) -> Response:
    """A new flow from nothing: its name, a first step and what it says; then the editor on its draft."""
    check_csrf(staff, values.get("csrf_token", ""))
    if not rv.may_edit(staff.staff):
        return denied(request, staff)
    texts = {lang: values.get(f"text_{lang}", "") for lang in LANGUAGES}
    try:
        new = nf.parse(values.get("flow_id", ""), values.get("first_step", ""), values.get("say", ""), texts)
        files = {p.stem for p in (settings.content_dir / "dialogues").glob("*.yaml")}
        item, draft = nf.do_create_flow(db, staff.staff, new, file_flows=files)
    except nf.NewFlowRefused as exc:
        db.rollback()
        return RedirectResponse(f"/staff/studio?error={exc.reason}#new-flow", status_code=303)
    return RedirectResponse(item_url(item, draft.number), status_code=303)


@router.get("/{key}/r/{number}", response_class=HTMLResponse)
def editor_page(request: Request, key: str, number: int, db: SessionDep, staff: StaffDep) -> Response:
    found = revision_of(request, db, staff, KIND, key, number)
    if isinstance(found, Response):
        return found
    query = request.query_params
    return _editor(request, db, staff, *found, error=query.get("error", ""), page=_page(query.get("page")))


def _page(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 6 else 1


@router.get("/{key}/r/{number}/flow.yaml")
def as_yaml(request: Request, key: str, number: int, db: SessionDep, staff: StaffDep) -> Response:
    """The revision as its file, read only (a page of its own: dumping a flow of 200 steps took longer
    than the rest of the editor's page)."""
    found = revision_of(request, db, staff, KIND, key, number)
    if isinstance(found, Response):
        return found
    text = yaml_files.dump(dict(found[1].body), allow_unicode=True, sort_keys=False, width=100)
    return PlainTextResponse(text, media_type="text/plain; charset=utf-8")


@router.post("/{key}/r/{number}/save", response_class=HTMLResponse)
def save(
    request: Request, key: str, number: int, db: SessionDep, staff: StaffDep, values: FormDep
) -> Response:
    check_csrf(staff, values.get("csrf_token", ""))
    found = revision_of(request, db, staff, KIND, key, number)
    if isinstance(found, Response):
        return found
    item, revision = found
    body = flow_form.body_from_form(revision.body, values)
    changelog = values["changelog"][: rv.MAX_NOTE] if "changelog" in values else None
    refused = save_typed_draft(db, item, number, staff, values.get("version", ""), body, changelog)
    page = _page(values.get("page"))
    if refused is not None:  # the page comes back with what was typed, and says why it was not saved
        reason, revision = refused
        return _editor(request, db, staff, item, revision, body=body, error=reason, status=409, page=page)
    return RedirectResponse(f"{item_url(item, number)}?saved=1&page={page}#check-title", status_code=303)


@router.post("/{key}/r/{number}/check")
def check(
    request: Request, key: str, number: int, db: SessionDep, staff: StaffDep, values: FormDep
) -> Response:
    """The problems the form as typed would have, for the editor's page while she types; saves nothing."""
    check_csrf(staff, values.get("csrf_token", ""))
    found = revision_of(request, db, staff, KIND, key, number)
    if isinstance(found, Response):
        return found
    item, revision = found
    body = flow_form.body_from_form(revision.body, values)
    problems = kind_problems(db, KIND, {**body, "id": item.key})
    return JSONResponse(
        {
            "count": len(problems),
            "problems": [{"step": p.where, "text": problem_text(p, staff.staff.language)} for p in problems],
        }
    )
