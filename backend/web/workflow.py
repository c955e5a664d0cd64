"""The workflow routes that feedback cases and inbox tasks share: claim, assign, transfer, close, reopen.

Each kind of work item says how to perform an action on one of its items (scope, refusal page, where a
done action goes; see `actions.perform`) and which `do_*` verb each action runs; `add_workflow_routes`
registers the same five form posts on its router, so the two pages cannot drift apart.
"""

# No `from __future__ import annotations`: the routes are built inside a function, and FastAPI reads
# their parameters at registration, when the names they use are local to that function.

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Generic, Protocol, TypeVar

from fastapi import APIRouter, Depends, Form, Path, Request, Response
from sqlalchemy.orm import Session

from backend.models import StaffSession, StaffUser
from backend.services.refusal import ActionRefused
from backend.web.deps import SessionDep, StaffDep, client_ip

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
Fields = dict[str, str]  # a kind's own close form fields, by name


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


def add_workflow_routes(router: APIRouter, kind: Workflow[T]) -> None:
    """Register POST /{id}/claim, /assign, /transfer, /close and /reopen on `router`."""
    base = "/{" + kind.id_name + "}"
    ItemId = Annotated[int, Path(alias=kind.id_name)]
    Token = Annotated[str, Form(max_length=128)]

    def actor(request: Request, db: Session, staff: StaffSession) -> Actor:
        return Actor(db, staff.staff_id, client_ip(request))

    def bare(action: str, run: Callable[[Actor, T], object]) -> None:
        """An action whose form holds nothing but the CSRF token."""

        @router.post(f"{base}/{action}", name=action)
        def route(
            request: Request, db: SessionDep, staff: StaffDep, item_id: ItemId, csrf_token: Token
        ) -> Response:
            return kind.perform(
                request, db, staff, item_id, csrf_token, lambda item: run(actor(request, db, staff), item)
            )

    bare("claim", kind.claim)

    @router.post(base + "/assign")
    def assign(
        request: Request,
        db: SessionDep,
        staff: StaffDep,
        item_id: ItemId,
        csrf_token: Token,
        assignee: Annotated[int, Form()],
    ) -> Response:
        def verb(item: T) -> None:
            person = db.get(StaffUser, assignee)
            if person is None:
                raise ActionRefused("assignee_outside_department")
            kind.assign(actor(request, db, staff), item, person)

        return kind.perform(request, db, staff, item_id, csrf_token, verb)

    @router.post(base + "/transfer")
    def transfer(
        request: Request,
        db: SessionDep,
        staff: StaffDep,
        item_id: ItemId,
        csrf_token: Token,
        department: Annotated[int, Form()],
    ) -> Response:
        def verb(item: T) -> None:
            kind.transfer(actor(request, db, staff), item, department)

        return kind.perform(request, db, staff, item_id, csrf_token, verb)

    @router.post(base + "/close")
    def close(
        request: Request,
        db: SessionDep,
        staff: StaffDep,
        item_id: ItemId,
        csrf_token: Token,
        fields: Annotated[Fields, Depends(kind.close_form)],
    ) -> Response:
        def verb(item: T) -> None:
            kind.close(actor(request, db, staff), item, fields)

        drafts = {name: fields[name] for name in kind.close_drafts}
        return kind.perform(request, db, staff, item_id, csrf_token, verb, drafts=drafts)

    bare("reopen", kind.reopen)
