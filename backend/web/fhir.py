"""Routes of the FHIR R4 API under /fhir/R4: discovery, the token endpoint, read, search, create and
update. Routes parse, authenticate, call backend/fhir and answer; every refusal is an OperationOutcome."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from backend.app.settings import Settings
from backend.fhir import capability, search
from backend.fhir.clients import Caller, OAuthError, authenticate, do_exchange
from backend.fhir.outcome import FhirError, IssueType, operation_outcome, outcome_of
from backend.fhir.params import parse_criteria
from backend.fhir.scopes import RESOURCE_TYPES, Interaction, allows
from backend.fhir.wire import parse_json
from backend.fhir.writes import Written, matches, write_encounter, write_patient
from backend.models.base import utcnow
from backend.services import audit
from backend.services.ids import parse_id
from backend.web.deps import SessionDep, SettingsDep, client_ip

log = logging.getLogger(__name__)
router = APIRouter(prefix="/fhir/R4")
FHIR_JSON = "application/fhir+json"
WRITABLE = capability.WRITABLE


def fhir_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers, media_type=FHIR_JSON)


def error_response(error: FhirError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="fhir"'} if error.status == 401 else None
    return fhir_response(outcome_of(error), error.status, headers)


def base_url(settings: Settings) -> str:
    return f"{settings.public_url}/fhir/R4"


def _caller(request: Request, session: SessionDep, interaction: Interaction, resource_type: str) -> Caller:
    """The authenticated client, allowed this interaction on this type; refusals are audited (and kept:
    the request's transaction is rolled back after a refusal, so they are committed first)."""
    if resource_type not in RESOURCE_TYPES:
        raise FhirError(404, IssueType.NOT_SUPPORTED, f"no resource type {resource_type!r} here")
    ip = client_ip(request)
    try:
        caller = authenticate(
            session,
            authorization=request.headers.get("authorization"),
            api_key=request.headers.get("x-api-key"),
            now=utcnow(),
        )
    except FhirError as refused:
        audit.record(
            session, "fhir.unauthenticated", ip=ip, reason=refused.diagnostics, resource=resource_type
        )
        session.commit()
        raise
    if not allows(caller.scopes, resource_type, interaction):
        audit.record(
            session, "fhir.forbidden", ip=ip, client=caller.name, resource=resource_type,
            interaction=interaction.value,
        )  # fmt: skip
        session.commit()
        raise FhirError(
            403, IssueType.FORBIDDEN,
            f"the token's scopes do not allow {interaction.name.lower()} on {resource_type} "
            f"(needs system/{resource_type}.{interaction.value})",
        )  # fmt: skip
    return caller


def _accessed(
    session: SessionDep, request: Request, caller: Caller, action: str, resource_type: str, **detail: Any
) -> None:
    audit.record(
        session, f"fhir.{action}", ip=client_ip(request), client=caller.name, resource=resource_type, **detail
    )


@contextmanager
def _refusals_audited(
    session: SessionDep, request: Request, caller: Caller, resource_type: str
) -> Iterator[None]:
    """A refusal after authentication (bad input, 404, 409, 412) is audited too: the work is rolled back
    and the refusal row committed on its own."""
    try:
        yield
    except FhirError as refused:
        session.rollback()
        audit.record(
            session, "fhir.refused", ip=client_ip(request), client=caller.name, resource=resource_type,
            status=refused.status, reason=refused.diagnostics[:200],
        )  # fmt: skip
        session.commit()
        raise


@router.get("/metadata")
async def metadata(settings: SettingsDep) -> Response:
    """Public, as FHIR and SMART discovery require: it names no patient data."""
    return fhir_response(capability.capability_statement(base_url(settings), utcnow()))


@router.get("/.well-known/smart-configuration")
async def smart_configuration(settings: SettingsDep) -> Response:
    return JSONResponse(capability.smart_configuration(base_url(settings)))


@router.post("/auth/token")
def token(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    grant_type: Annotated[str, Form()] = "",
    client_assertion_type: Annotated[str, Form()] = "",
    client_assertion: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "",
) -> Response:
    """SMART Backend Services' token endpoint; errors as RFC 6749 asks (JSON `error`)."""
    form = {
        "grant_type": grant_type,
        "client_assertion_type": client_assertion_type,
        "client_assertion": client_assertion,
        "scope": scope,
    }
    # the audience is this endpoint: as configured (public_url) or as the client addressed it
    audiences = [f"{base_url(settings)}/auth/token", str(request.url)]
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    try:
        issued = do_exchange(
            session, form, audiences=audiences, lifetime_seconds=settings.fhir_token_seconds, now=utcnow()
        )
    except OAuthError as refused:
        session.commit()  # keep the refusal's audit row
        refusal = {"error": refused.error, "error_description": refused.description}
        return JSONResponse(refusal, status_code=refused.status, headers=headers)
    body: dict[str, Any] = {
        "access_token": issued.access_token,
        "token_type": "bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }
    return JSONResponse(body, headers=headers)


@router.get("/{resource_type}/{row_id}")
def read(
    request: Request, resource_type: str, row_id: str, session: SessionDep, settings: SettingsDep
) -> Response:
    caller = _caller(request, session, Interaction.READ, resource_type)
    with _refusals_audited(session, request, caller, resource_type):
        row = parse_id(row_id)
        if row is None:
            raise FhirError(404, IssueType.NOT_FOUND, f"{resource_type}/{row_id} is not known")
        resource, patient_id = search.read(
            session, resource_type, row, caller.department_id, lang=settings.default_language
        )
        _accessed(session, request, caller, "read", resource_type, patient_id=patient_id, id=row)
        meta = resource.get("meta", {})
        return fhir_response(resource, headers={"ETag": f'W/"{meta.get("versionId", "1")}"'})


@router.get("/{resource_type}")
def search_type(request: Request, resource_type: str, session: SessionDep, settings: SettingsDep) -> Response:
    caller = _caller(request, session, Interaction.SEARCH, resource_type)
    with _refusals_audited(session, request, caller, resource_type):
        items = list(request.query_params.multi_items())
        criteria = parse_criteria(resource_type, items, ZoneInfo(settings.default_timezone))
        page = search.search(
            session, resource_type, criteria, caller.department_id, lang=settings.default_language
        )
        _accessed(
            session, request, caller, "search", resource_type, count=len(page.resources),
            patients=sorted(set(page.patient_ids))[:200],
        )  # fmt: skip
        bundle = search.searchset(page, f"{base_url(settings)}/{resource_type}", items)
        return fhir_response(bundle)


def _written(
    session: SessionDep, request: Request, settings: Settings, caller: Caller, written: Written, action: str
) -> Response:
    _accessed(
        session, request, caller, action, written.resource_type, patient_id=written.patient_id,
        id=written.row_id,
        outcome=written.notes,
    )  # fmt: skip
    if written.row_id is None:
        body = operation_outcome(IssueType.INFORMATIONAL, written.notes, severity="information")
        return fhir_response(body)
    resource, _ = search.read(
        session, written.resource_type, written.row_id, None, lang=settings.default_language
    )
    version = resource["meta"]["versionId"]
    headers = {
        "ETag": f'W/"{version}"',
        "Location": f"{base_url(settings)}/{written.resource_type}/{written.row_id}/_history/{version}",
        "Last-Modified": resource["meta"]["lastUpdated"],
    }
    return fhir_response(resource, 201 if written.created else 200, headers)


def _write(
    request: Request,
    body: bytes,
    resource_type: str,
    session: SessionDep,
    settings: Settings,
    *,
    target_id: int | None,
    create_only: bool,
    caller: Caller,
) -> Written:
    data = parse_json(body)
    if_match = request.headers.get("if-match")
    common: dict[str, Any] = {"settings": settings, "target_id": target_id, "if_match": if_match}
    if resource_type == "Patient":
        return write_patient(session, caller, data, create_only=create_only, **common)
    return write_encounter(session, caller, data, create_only=create_only, now=utcnow(), **common)


def _conditional(
    session: SessionDep, settings: Settings, caller: Caller, resource_type: str, query: str
) -> list[int]:
    items = parse_qsl(query.removeprefix("?").removeprefix(f"{resource_type}?"), keep_blank_values=True)
    if not items:
        raise FhirError(400, IssueType.INVALID, "the conditional search is empty", expression="If-None-Exist")
    return matches(
        session,
        resource_type,
        parse_criteria(resource_type, items, ZoneInfo(settings.default_timezone)),
        caller,
    )


def writable(resource_type: str) -> None:
    if resource_type not in WRITABLE:
        raise FhirError(
            405,
            IssueType.NOT_SUPPORTED,
            f"{resource_type} is read-only here (create and update: Patient, Encounter)",
        )


@router.post("/{resource_type}")
async def create(
    request: Request, resource_type: str, session: SessionDep, settings: SettingsDep
) -> Response:
    body = await request.body()

    def work() -> Response:
        caller = _caller(request, session, Interaction.CREATE, resource_type)
        with _refusals_audited(session, request, caller, resource_type):
            writable(resource_type)
            condition = request.headers.get("if-none-exist")
            if condition is not None:
                found = _conditional(session, settings, caller, resource_type, condition)
                if len(found) > 1:
                    raise FhirError(
                        412, IssueType.MULTIPLE_MATCHES, "If-None-Exist matches several resources"
                    )
                if found:  # already there: nothing written, the existing resource answered
                    resource, patient_id = search.read(
                        session, resource_type, found[0], caller.department_id, lang=settings.default_language
                    )
                    _accessed(
                        session, request, caller, "read", resource_type, patient_id=patient_id, id=found[0]
                    )
                    return fhir_response(resource, headers={"ETag": f'W/"{resource["meta"]["versionId"]}"'})
            written = _write(
                request, body, resource_type, session, settings, target_id=None,
                create_only=condition is None,
                caller=caller,
            )  # fmt: skip
            return _written(session, request, settings, caller, written, "create")

    return await run_in_threadpool(work)


@router.put("/{resource_type}/{row_id}")
async def update(
    request: Request, resource_type: str, row_id: str, session: SessionDep, settings: SettingsDep
) -> Response:
    body = await request.body()

    def work() -> Response:
        caller = _caller(request, session, Interaction.UPDATE, resource_type)
        with _refusals_audited(session, request, caller, resource_type):
            writable(resource_type)
            row = parse_id(row_id)
            if row is None:
                raise FhirError(404, IssueType.NOT_FOUND, f"{resource_type}/{row_id} is not known")
            written = _write(
                request, body, resource_type, session, settings, target_id=row, create_only=False,
                caller=caller,
            )  # fmt: skip
            return _written(session, request, settings, caller, written, "update")

    return await run_in_threadpool(work)


@router.put("/{resource_type}")
async def conditional_update(
    request: Request, resource_type: str, session: SessionDep, settings: SettingsDep
) -> Response:
    """PUT Patient?identifier=system|value: update the one match, create when none, 412 for several."""
    body = await request.body()

    def work() -> Response:
        caller = _caller(request, session, Interaction.UPDATE, resource_type)
        with _refusals_audited(session, request, caller, resource_type):
            writable(resource_type)
            found = _conditional(session, settings, caller, resource_type, request.url.query)
            if len(found) > 1:
                raise FhirError(
                    412, IssueType.MULTIPLE_MATCHES, "the conditional update matches several resources"
                )
            if not found and not allows(caller.scopes, resource_type, Interaction.CREATE):
                raise FhirError(
                    403, IssueType.FORBIDDEN, f"no match, and creating needs system/{resource_type}.c"
                )
            written = _write(
                request, body, resource_type, session, settings, target_id=found[0] if found else None,
                create_only=False, caller=caller,
            )  # fmt: skip
            return _written(session, request, settings, caller, written, "update" if found else "create")

    return await run_in_threadpool(work)


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
async def unknown(rest: str) -> Response:
    """Anything else under /fhir/R4 (history, delete, operations, other types) answers as FHIR does."""
    return error_response(
        FhirError(
            404, IssueType.NOT_SUPPORTED, f"{rest!r}: not an interaction this server supports (see /metadata)"
        )
    )
