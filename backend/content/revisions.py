"""The one lifecycle of every authored thing: draft → in review → (approved, for a scheduled time) →
published → superseded or retired. Each verb checks who may act and in which state, writes the audit row,
and raises ActionRefused with nothing changed; what a body means is left to its kind (kinds.py).

Published revisions are immutable: an edit, a rollback or a file import always makes a new revision.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.content import canned as _canned  # noqa: F401  (registers the canned replies)
from backend.content import course as _course  # noqa: F401  (registers education courses)
from backend.content import education as _education  # noqa: F401  (registers education articles)
from backend.content import flow_library as _flows  # noqa: F401  (registers the flow kind)
from backend.content import plan as _plan  # noqa: F401  (registers the follow-up plan kind)
from backend.content import provider_templates as _templates  # noqa: F401  (registers template mappings)
from backend.content import questionnaire as _questionnaire  # noqa: F401  (registers the questionnaire kind)
from backend.content import safety_lexicon as _safety_lexicon  # noqa: F401  (registers the red-flag phrases)
from backend.content import texts as _texts  # noqa: F401  (registers the message-catalogue kind)
from backend.content.kinds import Problem, kind_of, materialise, published, retirable
from backend.content.kinds import problems as kind_problems
from backend.models import ContentItem, ContentRevision, RevisionState, StaffUser
from backend.models.base import utcnow
from backend.security.permissions import Permission, may
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason

MAX_NOTE = 4000
WAITING = (RevisionState.IN_REVIEW, RevisionState.APPROVED)


class ContentInvalid(ActionRefused):
    """The body has blocking problems: it may stay a draft, it is never submitted or published."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(Reason.CONTENT_INVALID)
        self.problems = problems


def may_edit(user: StaffUser) -> bool:
    return may(user, Permission.CONTENT_EDIT)


def approves_clinical(user: StaffUser) -> bool:
    """Approve others' clinical revisions: granted to a role, or to the person (`content_approver`)."""
    return may(user, Permission.CONTENT_APPROVE)


def get_item(
    session: Session, kind: str, key: str, *, create: bool = False, clinical: bool = False
) -> ContentItem:
    item = session.scalar(sa.select(ContentItem).where(ContentItem.kind == kind, ContentItem.key == key))
    if item is None:
        if not create:
            raise ActionRefused(Reason.NO_SUCH_REVISION)
        kind_of(kind)  # an unknown kind is a programming error, not a refusal
        item = ContentItem(kind=kind, key=key, clinical=clinical)
        session.add(item)
        session.flush()
    return item


def get_revision(session: Session, item: ContentItem, number: int) -> ContentRevision:
    revision = session.scalar(
        sa.select(ContentRevision).where(ContentRevision.item_id == item.id, ContentRevision.number == number)
    )
    if revision is None:
        raise ActionRefused(Reason.NO_SUCH_REVISION)
    return revision


def published_revision(session: Session, item: ContentItem) -> ContentRevision | None:
    return None if item.published_number is None else get_revision(session, item, item.published_number)


def revisions(session: Session, item: ContentItem) -> list[ContentRevision]:
    """Newest first."""
    query = sa.select(ContentRevision).where(ContentRevision.item_id == item.id)
    return list(session.scalars(query.order_by(ContentRevision.number.desc())))


def blocking(session: Session, item: ContentItem, body: Mapping[str, Any]) -> list[Problem]:
    return [p for p in kind_problems(session, item.kind, body) if p.blocking]


def _audit(
    session: Session,
    action: str,
    user: StaffUser | None,
    item: ContentItem,
    revision: ContentRevision,
    **detail: Any,
) -> None:
    audit.record(
        session,
        f"content.{action}",
        staff_id=user.id if user else None,
        subject=("content_revision", revision.id),
        kind=item.kind,
        key=item.key,
        number=revision.number,
        **detail,
    )


def _editor(user: StaffUser) -> None:
    if not may_edit(user):
        raise ActionRefused(Reason.NOT_AN_EDITOR)


def _new_revision(
    session: Session,
    item: ContentItem,
    body: Mapping[str, Any],
    *,
    author: StaffUser | None,
    source: str,
    changelog: str,
    based_on: int | None,
    now: datetime,
) -> ContentRevision:
    last = session.scalar(
        sa.select(sa.func.max(ContentRevision.number)).where(ContentRevision.item_id == item.id)
    )
    revision = ContentRevision(
        item_id=item.id,
        number=(last or 0) + 1,
        state=RevisionState.DRAFT,
        body=dict(body),
        based_on=based_on,
        author_id=author.id if author else None,
        changelog=changelog,
        source=source,
        created_at=now,
        updated_at=now,
    )
    session.add(revision)
    session.flush()
    return revision


def do_start_draft(
    session: Session,
    item: ContentItem,
    user: StaffUser | None,
    *,
    body: Mapping[str, Any] | None = None,
    source: str = "studio",
    changelog: str = "",
    now: datetime | None = None,
) -> ContentRevision:
    """A new draft: `body`, or a copy of the published revision's. `user` None: the system (a file import)."""
    if user is not None:
        _editor(user)
    current = published_revision(session, item)
    if body is None:
        body = current.body if current is not None else {}
    revision = _new_revision(
        session,
        item,
        body,
        author=user,
        source=source,
        changelog=changelog,
        based_on=current.number if current else None,
        now=now or utcnow(),
    )
    _audit(session, "draft_started", user, item, revision, source=source)
    return revision


def do_save_draft(
    session: Session,
    item: ContentItem,
    number: int,
    user: StaffUser,
    *,
    version: int,
    body: Mapping[str, Any],
    changelog: str | None = None,
    now: datetime | None = None,
) -> ContentRevision:
    """Save a draft edited from its `version`. Someone else saved it since: EDITED_MEANWHILE, and the
    caller still holds what was typed. A draft may hold problems; submitting it may not."""
    _editor(user)
    revision = get_revision(session, item, number)
    if revision.state is not RevisionState.DRAFT:
        raise ActionRefused(Reason.NOT_A_DRAFT)
    values: dict[str, Any] = {"body": dict(body), "version": version + 1, "updated_at": now or utcnow()}
    if changelog is not None:
        values["changelog"] = changelog[:MAX_NOTE]
    # one conditional UPDATE: of two editors who loaded version N, exactly one saves
    done = session.execute(
        sa.update(ContentRevision)
        .where(
            ContentRevision.id == revision.id,
            ContentRevision.version == version,
            ContentRevision.state == RevisionState.DRAFT,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise ActionRefused(Reason.EDITED_MEANWHILE)
    session.refresh(revision)
    _audit(session, "draft_saved", user, item, revision, version=revision.version)
    return revision


def do_submit(
    session: Session, item: ContentItem, number: int, user: StaffUser, *, now: datetime | None = None
) -> ContentRevision:
    _editor(user)
    revision = get_revision(session, item, number)
    if revision.state is not RevisionState.DRAFT:
        raise ActionRefused(Reason.NOT_A_DRAFT)
    if problems := blocking(session, item, revision.body):
        raise ContentInvalid(problems)
    if revision.author_id is None:
        # a system draft (a file or FHIR import) is the submitter's from here: approval by a second
        # person means someone other than whoever put it forward
        revision.author_id = user.id
    revision.state = RevisionState.IN_REVIEW
    revision.submitted_at = now or utcnow()
    revision.version += 1
    _audit(session, "submitted", user, item, revision)
    return revision


def needs_approver(session: Session, item: ContentItem, revision: ContentRevision) -> bool:
    """Clinical items, and changes the kind calls clinical, need a second person with the grant."""
    if item.clinical:
        return True
    current = published_revision(session, item)
    return kind_of(item.kind).needs_approver(current.body if current else None, revision.body)


def may_approve(
    session: Session, item: ContentItem, revision: ContentRevision, user: StaffUser
) -> Reason | None:
    """None when `user` may approve `revision`, else why not."""
    if not may_edit(user):
        return Reason.NOT_AN_EDITOR
    own = revision.author_id == user.id
    if needs_approver(session, item, revision):
        if own:
            return Reason.OWN_REVISION
        return None if approves_clinical(user) else Reason.NOT_AN_APPROVER
    if own and not get_settings().studio_self_publish:
        return Reason.OWN_REVISION
    return None


def do_approve(
    session: Session,
    item: ContentItem,
    number: int,
    user: StaffUser,
    *,
    publish_at: datetime | None = None,
    now: datetime | None = None,
) -> ContentRevision:
    """Approve a revision in review: published now, or at `publish_at` by the periodic sweep."""
    now = now or utcnow()
    revision = get_revision(session, item, number)
    if revision.state is not RevisionState.IN_REVIEW:
        raise ActionRefused(Reason.NOT_IN_REVIEW)
    if (why := may_approve(session, item, revision, user)) is not None:
        raise ActionRefused(why)
    if publish_at is not None and publish_at.tzinfo is None:
        raise ActionRefused(Reason.PUBLISH_TIME)
    if problems := blocking(session, item, revision.body):
        raise ContentInvalid(problems)
    revision.approver_id, revision.approved_at = user.id, now
    if publish_at is not None and publish_at > now:
        revision.state, revision.publish_at = RevisionState.APPROVED, publish_at
        revision.version += 1
        _audit(session, "approved", user, item, revision, publish_at=publish_at.isoformat())
        return revision
    _audit(session, "approved", user, item, revision)
    return _publish(session, item, revision, user, now)


def _publish(
    session: Session, item: ContentItem, revision: ContentRevision, user: StaffUser | None, now: datetime
) -> ContentRevision:
    """The one place a revision becomes the published one; validation runs again (nothing broken ever
    goes out, whatever path led here)."""
    if problems := blocking(session, item, revision.body):
        raise ContentInvalid(problems)
    current = published_revision(session, item)
    if current is not None and current.id != revision.id:
        current.state = RevisionState.SUPERSEDED
    revision.state, revision.published_at = RevisionState.PUBLISHED, now
    revision.version += 1
    item.published_number = revision.number
    session.flush()
    materialise(session, item.kind, item.key, revision.body, user.id if user else None)
    _audit(session, "published", user, item, revision)
    published(item.kind, item.key)
    return revision


def do_reject(
    session: Session,
    item: ContentItem,
    number: int,
    user: StaffUser,
    *,
    note: str,
    now: datetime | None = None,
) -> ContentRevision:
    """Back to draft with the reviewer's note (or the author withdrawing it)."""
    _editor(user)
    revision = get_revision(session, item, number)
    if revision.state not in WAITING:
        raise ActionRefused(Reason.NOT_IN_REVIEW)
    note = note.strip()
    if not note or len(note) > MAX_NOTE:
        raise ActionRefused(Reason.REJECT_NOTE)
    revision.state, revision.note = RevisionState.DRAFT, note
    revision.approver_id = revision.approved_at = revision.publish_at = None
    revision.version += 1
    revision.updated_at = now or utcnow()
    _audit(session, "rejected", user, item, revision)
    return revision


def do_rollback(
    session: Session, item: ContentItem, number: int, user: StaffUser, *, now: datetime | None = None
) -> ContentRevision:
    """Publish revision `number`'s body again as a new revision, in one step: it was reviewed and published
    once. Whoever could approve the change approves this one."""
    now = now or utcnow()
    earlier = get_revision(session, item, number)
    if earlier.published_at is None:
        raise ActionRefused(Reason.NOT_PUBLISHED)
    if item.published_number == number:
        raise ActionRefused(Reason.NOT_PUBLISHED)  # it is the published one: nothing to roll back to
    if not may_edit(user):
        raise ActionRefused(Reason.NOT_AN_EDITOR)
    current = published_revision(session, item)
    clinical = item.clinical or kind_of(item.kind).needs_approver(
        current.body if current else None, earlier.body
    )
    if clinical and not approves_clinical(user):
        raise ActionRefused(Reason.NOT_AN_APPROVER)
    if problems := blocking(session, item, earlier.body):
        raise ContentInvalid(problems)
    revision = _new_revision(
        session,
        item,
        earlier.body,
        author=user,
        source="rollback",
        changelog=f"rollback to {number}",
        based_on=item.published_number,
        now=now,
    )
    revision.submitted_at = revision.approved_at = now
    revision.approver_id = user.id
    _audit(session, "rolled_back", user, item, revision, to=number)
    return _publish(session, item, revision, user, now)


def do_retire(
    session: Session, item: ContentItem, user: StaffUser, *, now: datetime | None = None
) -> ContentRevision:
    """Withdraw the published revision: the item has none until another is published."""
    _editor(user)
    if not retirable(item.kind):
        raise ActionRefused(Reason.NOT_RETIRABLE)
    current = published_revision(session, item)
    if current is None:
        raise ActionRefused(Reason.NOTHING_PUBLISHED)
    if item.clinical and not approves_clinical(user):
        raise ActionRefused(Reason.NOT_AN_APPROVER)
    current.state, current.retired_at = RevisionState.RETIRED, now or utcnow()
    item.published_number = None
    session.flush()
    _audit(session, "retired", user, item, current)
    published(item.kind, item.key)
    return current


def do_publish_initial(
    session: Session, item: ContentItem, body: Mapping[str, Any], *, source: str, now: datetime | None = None
) -> ContentRevision:
    """A new site's first revision, seeded from files by the system: only while nothing was ever published."""
    now = now or utcnow()
    if session.scalar(sa.select(sa.func.count()).where(ContentRevision.item_id == item.id)):
        raise ActionRefused(Reason.NOT_A_DRAFT)
    revision = _new_revision(
        session, item, body, author=None, source=source, changelog="seeded from files", based_on=None, now=now
    )
    return _publish(session, item, revision, None, now)


def publish_due(session: Session, *, now: datetime | None = None) -> int:
    """Approved revisions whose publish time has come (the periodic sweep); one that no longer validates
    goes back to draft with a note rather than out."""
    now = now or utcnow()
    due = session.scalars(
        sa.select(ContentRevision)
        .where(ContentRevision.state == RevisionState.APPROVED, ContentRevision.publish_at <= now)
        .order_by(ContentRevision.publish_at, ContentRevision.id)
    ).all()
    done = 0
    for revision in due:
        item = session.get_one(ContentItem, revision.item_id)
        if blocking(session, item, revision.body):
            revision.state, revision.note = RevisionState.DRAFT, "scheduled publish refused: content invalid"
            revision.version += 1
            continue
        _publish(session, item, revision, None, now)
        done += 1
    return done
