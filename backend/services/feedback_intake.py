"""Feedback given in a chat flow (complaint, praise, suggestion) handed to staff."""

from __future__ import annotations

from sqlalchemy.orm import Session

from backend.models import Conversation, FeedbackCase
from backend.services.anonymity import do_mark_complaint_message
from backend.services.cases import do_register_case
from bots.effects import SubmitFeedback


def take_feedback(session: Session, conversation: Conversation, effect: SubmitFeedback) -> FeedbackCase:
    """Register the feedback as a case (which raises its complaints-queue task). Anonymous feedback keeps
    the patient for the service centre but hides them from the departments (the case's own rule)."""
    case = do_register_case(
        session,
        kind=effect.kind.value,
        text=effect.text,
        patient_id=conversation.patient_id,
        anonymous=effect.anonymous,
        department_id=effect.department_id,
        channel=conversation.channel.value,
        conversation_id=conversation.id,
        actor=f"patient:{conversation.channel.value}",
    )
    if case.anonymous:
        do_mark_complaint_message(session, case, conversation)
    return case
