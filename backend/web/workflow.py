"""The workflow routes that feedback cases and inbox tasks share: claim, assign, transfer, close, reopen.

Each kind of work item says how to perform an action on one of its items (scope, refusal page, where a
done action goes; see `actions.perform`) and which `do_*` verb each action runs; `add_workflow_routes`
registers the same five form posts on its router, so the two pages cannot drift apart.
"""

# No `from __future__ import annotations`: the routes are built inside a function, and FastAPI reads
# their parameters at registration, when the names they use are local to that function.

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Protocol, TypeVar

from fastapi import APIRouter, Depends, Form, Path, Request, Response
from sqlalchemy.orm import Session

from backend.models import StaffSession, StaffUser
from backend.services.refusal import ActionRefused, Reason
from backend.web.deps import SessionDep, StaffDep, client_ip
from backend.web.ids import id_form

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
Fields = dict[str, Any]  # what an action's form fields read, by name


@dataclass(frozen=True)
class Actor:
    """Who runs the verb, from where: what every verb is given besides its item."""

    db: Session
    staff_id: int
    ip: str | None


class Perform(Protocol[T_co]):
    def __call__(
        self,
        request: Request,
        db: Session,
        staff: StaffSession,
        item_id: int,
        token: str,
        verb: Callable[[T_co], object],
        /,
        *,
        drafts: Fields | None = None,
    ) -> Response: ...


@dataclass(frozen=True)
class Workflow(Generic[T]):
    """One kind of work item: its path parameter, how an action is performed, and its five verbs."""

    id_name: str  # the path parameter ("task_id"), kept in validation errors
    perform: Perform[T]
    claim: Callable[[Actor, T], object]
    assign: Callable[[Actor, T, StaffUser], object]
    transfer: Callable[[Actor, T, int], object]
    close_form: Callable[..., Fields]  # a FastAPI dependency reading the kind's close form
    close: Callable[[Actor, T, Fields], object]
    reopen: Callable[[Actor, T], object]
    close_drafts: tuple[str, ...] = ()  # close form fields its page keeps after a refusal


def _nothing() -> Fields:
    return {}


def _assignee(assignee: Annotated[int, id_form()]) -> Fields:
    return {"assignee": assignee}


def _department(department: Annotated[int, id_form()]) -> Fields:
    return {"department": department}


def _person(db: Session, staff_id: int) -> StaffUser:
    person = db.get(StaffUser, staff_id)
    if person is None:
        raise ActionRefused(Reason.ASSIGNEE_OUTSIDE_DEPARTMENT)
    return person


def add_workflow_routes(router: APIRouter, kind: Workflow[T]) -> None:
    """Register POST /{id}/claim, /assign, /transfer, /close and /reopen on `router`."""
    item_id_type = Annotated[int, Path(alias=kind.id_name)]

    def action(
        name: str,
        form: Callable[..., Fields],
        run: Callable[[Actor, T, Fields], object],
        keep: tuple[str, ...] = (),
    ) -> None:
        """POST /{id}/<name>: the CSRF token and what `form` reads, then `run` through the kind's perform."""

        @router.post(f"/{{{kind.id_name}}}/{name}", name=name)
        def route(
            request: Request,
            db: SessionDep,
            staff: StaffDep,
            item_id: item_id_type,
            csrf_token: Annotated[str, Form(max_length=128)],
            fields: Annotated[Fields, Depends(form)],
        ) -> Response:
            def verb(item: T) -> None:
                run(Actor(db, staff.staff_id, client_ip(request)), item, fields)

            drafts = {field: fields[field] for field in keep}
            return kind.perform(request, db, staff, item_id, csrf_token, verb, drafts=drafts)

    action("claim", _nothing, lambda a, item, _: kind.claim(a, item))
    action("assign", _assignee, lambda a, item, f: kind.assign(a, item, _person(a.db, f["assignee"])))
    action("transfer", _department, lambda a, item, f: kind.transfer(a, item, f["department"]))
    action("close", kind.close_form, kind.close, keep=kind.close_drafts)
    action("reopen", _nothing, lambda a, item, _: kind.reopen(a, item))
