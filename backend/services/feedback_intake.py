"""Feedback given in a chat flow (complaint, praise, suggestion) handed to staff."""

from __future__ import annotations

from sqlalchemy.orm import Session

from backend.models import Conversation, Task, TaskKind, TaskPriority
from backend.services.tasks import do_raise_task
from bots.effects import FeedbackKind, SubmitFeedback

PRIORITY = {
    FeedbackKind.COMPLAINT: TaskPriority.HIGH,
    FeedbackKind.PRAISE: TaskPriority.LOW,
    FeedbackKind.SUGGESTION: TaskPriority.NORMAL,
}


def take_feedback(session: Session, conversation: Conversation, effect: SubmitFeedback) -> Task:
    """Raise the feedback for staff; anonymous feedback carries no patient on the task.

    Until the feedback case store is merged, the text is only in the conversation (the task's source),
    so staff can still read it there: anonymity is weak until then."""
    # MERGE: cases — call do_register_case(session, kind=effect.kind.value, text=effect.text,
    # patient_id=None if effect.anonymous else conversation.patient_id, anonymous=effect.anonymous,
    # department_id=effect.department_id, channel=conversation.channel.value,
    # conversation_id=None if effect.anonymous else conversation.id, actor=f"patient:{channel}")
    return do_raise_task(
        session,
        kind=TaskKind.COMPLAINT,
        priority=PRIORITY[effect.kind],
        title=f"feedback:{effect.kind.value}",
        source=("conversation", conversation.id),
        patient_id=None if effect.anonymous else conversation.patient_id,
        department_id=effect.department_id,
    )
