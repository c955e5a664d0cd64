"""Pausing and resuming a follow-up plan, and the settings a task runs on (the plan revision that made it).

A paused plan creates no tasks and sends nothing; its open tasks wait and go on where they were when it is
resumed. A task keeps the studio revision of the plan that created it: a later revision changes what new
tasks do, not the channels, resends or exclusions of the follow-ups already under way.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.content.plan import KIND, plan_from_body
from backend.models import ContentItem, ContentRevision, FollowUpPlan, OutreachStatus, OutreachTask, StaffUser
from backend.security.permissions import Permission, may
from backend.services import audit
from backend.services.refusal import ActionRefused, Reason


def _set_active(session: Session, plan: FollowUpPlan, staff: StaffUser, active: bool) -> FollowUpPlan:
    if not may(staff, Permission.CONTENT_EDIT):
        raise ActionRefused(Reason.NOT_AN_EDITOR)
    if plan.active is active:
        raise ActionRefused(Reason.PLAN_ALREADY_ACTIVE if active else Reason.PLAN_ALREADY_PAUSED)
    plan.active = active
    session.flush()
    audit.record(
        session,
        "plan.resumed" if active else "plan.paused",
        staff_id=staff.id,
        subject=("follow_up_plan", plan.id),
        key=plan.content_key,
        revision=plan.revision,
    )
    return plan


def do_pause_plan(session: Session, plan: FollowUpPlan, staff: StaffUser) -> FollowUpPlan:
    return _set_active(session, plan, staff, False)


def do_resume_plan(session: Session, plan: FollowUpPlan, staff: StaffUser) -> FollowUpPlan:
    return _set_active(session, plan, staff, True)


def pinned_plan(session: Session, plan: FollowUpPlan, revision: int | None) -> FollowUpPlan:
    """The plan as the task's revision had it: `plan` itself when that is the current one (or the plan is
    not the studio's), else an unsaved copy built from the revision's body."""
    if revision is None or plan.content_key is None or revision == plan.revision:
        return plan
    body = session.scalar(
        sa.select(ContentRevision.body)
        .join(ContentItem, ContentItem.id == ContentRevision.item_id)
        .where(
            ContentItem.kind == KIND, ContentItem.key == plan.content_key, ContentRevision.number == revision
        )
    )
    if body is None:
        return plan
    pinned = plan_from_body(body)
    pinned.id, pinned.active, pinned.revision = plan.id, plan.active, revision
    return pinned


def open_tasks_by_revision(session: Session, plan_id: int) -> dict[int | None, int]:
    """How many of the plan's follow-ups are still under way, per plan revision that created them."""
    rows = session.execute(
        sa.select(OutreachTask.plan_revision, sa.func.count())
        .where(
            OutreachTask.plan_id == plan_id,
            OutreachTask.status.in_([OutreachStatus.SCHEDULED, OutreachStatus.SENT]),
        )
        .group_by(OutreachTask.plan_revision)
    )
    return {revision: count for revision, count in rows}
