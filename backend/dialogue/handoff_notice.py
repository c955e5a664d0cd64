"""What a patient is told when a person takes over: the expected wait, and a complaint's case number.

The wait is the task's own response time (backend/services/sla.py: the department's and the hospital's
rows for the task's kind and priority, else the tables per priority), so the patient is promised what
staff are measured against. Whether someone is on duty is the department's roster
(backend/services/duty.py); without one on duty the patient hears that nobody is there now, with the
emergency number.
"""

from __future__ import annotations

import math
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.models import DutyRoster, FeedbackCase, Task, TaskKind, TaskPriority
from backend.services.sla import sla_for
from bots.catalog import Catalog


def wait_words(catalog: Catalog, lang: str, wait: timedelta) -> str:
    """A response time as a patient reads it, rounded up to a whole unit: "15 minutes", "4 hours",
    "3 days" (hours up to two days: "in 36 hours" is clearer than "in 2 days" for a next-day answer)."""
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    if minutes < 60:
        n, unit = minutes, "minutes"
    elif minutes <= 48 * 60:
        n, unit = math.ceil(minutes / 60), "hours"
    else:
        n, unit = math.ceil(minutes / 1440), "days"
    return catalog.text(lang, f"wait.{unit}_one" if n == 1 else f"wait.{unit}", n=n)


def staff_on_duty(session: Session, department_id: int | None) -> bool:
    """Someone is on the duty roster of the task's department (of any department, for a task without
    one: the hospital's inbox is watched when anyone is)."""
    query = sa.select(DutyRoster.department_id).where(DutyRoster.on_duty_id.is_not(None))
    if department_id is not None:
        query = query.where(DutyRoster.department_id == department_id)
    return session.scalar(query.limit(1)) is not None


def _wait(task: Task) -> timedelta:
    return task.due_at - task.created_at


def handoff_text(session: Session, catalog: Catalog, lang: str, task: Task) -> str:
    wait = wait_words(catalog, lang, _wait(task))
    if staff_on_duty(session, task.department_id):
        return catalog.text(lang, "handoff.wait_on_duty", wait=wait)
    return catalog.text(
        lang, "handoff.wait_off_duty", wait=wait, emergency_number=get_settings().emergency_number
    )


def case_number(case: FeedbackCase) -> str:
    """The number staff see on the case's page ("#42"), so a patient quoting it is found at once."""
    return f"#{case.id}"


def complaint_text(session: Session, catalog: Catalog, lang: str, case: FeedbackCase) -> str:
    """The case number, and the response time of the case's task (a complaint's of high priority in the
    case's department, when the case has no task)."""
    task = session.get(Task, case.task_id) if case.task_id is not None else None
    if task is not None:
        wait = _wait(task)
    else:
        wait = sla_for(session, TaskPriority.HIGH, case.department_id, TaskKind.COMPLAINT)
    return catalog.text(
        lang, "handoff.complaint_case", case=case_number(case), wait=wait_words(catalog, lang, wait)
    )
