"""A filtered list page, the same for each log staff search: parse the filters, query one page, audit
what was shown, render; a filter it cannot use is a 400 that names the field."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from fastapi import Request, Response
from sqlalchemy.orm import Session

from backend.models import StaffSession, StaffUser
from backend.services import audit
from backend.services.message_log import Cursor, InvalidFilter, Page, parse_cursor
from backend.web.deps import client_ip
from backend.web.staff import render

R = TypeVar("R")
F = TypeVar("F", bound="Filters")


class Filters(Protocol):
    def audit_detail(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FilteredList(Generic[F, R]):
    """One list: its template, audit action, filter parser, page query and the patients a row shows."""

    template: str
    action: str  # the audit row's action, e.g. "messages.view"
    parse: Callable[[Mapping[str, str]], F]  # raises InvalidFilter
    query: Callable[[Session, StaffUser, F, Cursor | None], Page[R]]
    patients: Callable[[Iterable[R]], Iterable[int]]


def filtered_page(
    request: Request,
    db: Session,
    staff: StaffSession,
    values: Mapping[str, str],
    listing: FilteredList[F, R],
    context: dict[str, Any],
) -> Response:
    """Render `listing` for the filter `values`; `context` holds what the form needs (its choices)."""
    user = staff.staff
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
