"""A filtered list page, the same for each log staff search: the filters from a link (GET) or a search
form (POST, CSRF-checked), parsed, one page queried, what was shown audited, rendered; a filter it
cannot use is a 400 that names the field."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Protocol, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from backend.models import StaffSession, StaffUser
from backend.services import audit
from backend.services.message_log import SENSITIVE_FIELDS, Cursor, InvalidFilter, Page, parse_cursor
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.staff import check_csrf, render

R = TypeVar("R")
F = TypeVar("F", bound="Filters")


class Filters(Protocol):
    def audit_detail(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FilteredList(Generic[F, R]):
    """One list: its form fields, template, audit action, filter parser, page query, the patients a row
    shows, and what else its form needs (choices) given the values shown."""

    fields: tuple[str, ...]
    template: str
    action: str  # the audit row's action, e.g. "messages.view"
    parse: Callable[[Mapping[str, str]], F]  # raises InvalidFilter
    query: Callable[[Session, StaffUser, F, Cursor | None], Page[R]]
    patients: Callable[[Iterable[R]], Iterable[int]]
    context: Callable[[Session, StaffSession, dict[str, str]], dict[str, Any]]


async def _form_values(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


FormDep = Annotated[dict[str, str], Depends(_form_values)]


def from_url(request: Request, fields: tuple[str, ...]) -> dict[str, str]:
    """Filters from a link. Names, MRNs, phone numbers and message text are only taken from a POST
    body, so they never sit in URLs, proxy logs or browser history."""
    wanted = {*fields, "after"} - SENSITIVE_FIELDS
    return {key: value for key, value in request.query_params.items() if key in wanted}


def filtered_page(
    request: Request, db: Session, staff: StaffSession, values: Mapping[str, str], listing: FilteredList[F, R]
) -> Response:
    """Render `listing` for the filter `values`."""
    user = staff.staff
    shown = {name: values.get(name, "") for name in listing.fields}
    context = {"staff": staff, "v": shown, **listing.context(db, staff, shown)}
    context.update(error=None, rows=[], next_cursor=None)
    try:
        filters = listing.parse(values)
        after = parse_cursor(values)
    except InvalidFilter as exc:
        context["error"] = exc.field
        return render(request, listing.template, user.language, context, 400)
    page = listing.query(db, user, filters, after)
    audit.record(
        db,
        listing.action,
        staff_id=user.id,
        ip=client_ip(request),
        filters=filters.audit_detail(),
        page=after is not None,
        patients=sorted(set(listing.patients(page.rows))),
    )
    context.update(rows=page.rows, next_cursor=page.next_cursor.encode() if page.next_cursor else None)
    return render(request, listing.template, user.language, context)


def add_filtered_routes(router: APIRouter, path: str, name: str, listing: FilteredList[F, R]) -> None:
    """GET `path` (filters from the link) and POST `path` (from the search form) on `router`."""

    @router.get(path, response_class=HTMLResponse, name=f"{name}_page")
    def page(request: Request, db: SessionDep, staff: StaffDep) -> Response:
        return filtered_page(request, db, staff, from_url(request, listing.fields), listing)

    @router.post(path, response_class=HTMLResponse, name=f"{name}_search")
    def search(request: Request, db: SessionDep, staff: StaffDep, values: FormDep) -> Response:
        check_csrf(staff, values.get("csrf_token", ""))
        return filtered_page(request, db, staff, values, listing)
