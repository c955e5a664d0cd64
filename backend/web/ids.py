"""Ids from requests, bounded (backend/services/ids.py): what a route may hand the database as a row id.

Every id column is a PostgreSQL `integer`, and SQLite cannot bind an int of 2**63 or more: such a value
used to reach the driver and end in a 500. Typed parameters carry `MAX_ID` as their bound
(`IdQuery`, `IdForm`); text our own code reads as an id goes through `parse_id`, which also refuses digits
other than ASCII ("１２３", "١٢٣": `str.isdigit` accepts them, and "²" then breaks `int`); ids in the
path are checked by `IdsInPath` before routing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Query
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.services.ids import MAX_ID, parse_id

LINK_SEGMENTS = frozenset({"c", "q", "f", "s", "a"})  # their second segment is a token, not an id

IdQuery = Annotated[int, Query(ge=0, le=MAX_ID)]


def id_form(**kwargs: Any) -> Any:
    """`Form()` for an id field: 422 beyond MAX_ID, like any other malformed form value."""
    return Form(ge=0, le=MAX_ID, **kwargs)


def _unusable(segment: str) -> bool:
    """A path segment made of digits that cannot be an id."""
    return segment.isdigit() and parse_id(segment) is None


def _not_found(path: str) -> Response:
    if path.startswith("/fhir/"):  # FHIR clients get an OperationOutcome for every error
        issue = {"severity": "error", "code": "not-found", "diagnostics": "no such resource"}
        outcome = {"resourceType": "OperationOutcome", "issue": [issue]}
        return JSONResponse(outcome, status_code=404, media_type="application/fhir+json")
    return PlainTextResponse("not found", status_code=404)


class IdsInPath:
    """404 for a path with a segment of digits that cannot be an id, before any route sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            segments = str(scope.get("path", "")).split("/")
            if len(segments) > 2 and segments[1] in LINK_SEGMENTS:
                segments = segments[3:]
            if any(_unusable(segment) for segment in segments):
                await _not_found(str(scope.get("path", "")))(scope, receive, send)
                return
        await self.app(scope, receive, send)
