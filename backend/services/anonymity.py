"""Anonymous feedback: the patient is named only to staff who see every department (the service centre,
who may have to call back). Every view that lists messages applies the same condition, so an anonymous
case's outcome notice (or the chat message that carried the complaint) never sits beside the patient's
name and number for the departments."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import Conversation, Direction, FeedbackCase, Message, StaffUser
from backend.services.patients import department_ids


def names_anonymous_patients(user: StaffUser) -> bool:
    return department_ids(user) is None


def visible_messages(user: StaffUser) -> list[sa.ColumnElement[bool]]:
    """Conditions on `Message` for this viewer: none of an anonymous case's messages unless they may know
    who the patient is."""
    if names_anonymous_patients(user):
        return []
    anonymous = sa.select(FeedbackCase.id).where(FeedbackCase.id == Message.case_id, FeedbackCase.anonymous)
    return [sa.or_(Message.case_id.is_(None), ~sa.exists(anonymous))]


def do_mark_complaint_message(session: Session, case: FeedbackCase, conversation: Conversation) -> None:
    """Tie the patient's chat message that carried the complaint's text to the case."""
    # texts are encrypted: the conversation's latest inbound messages are compared here (the complaint
    # was typed moments ago, so it is among them)
    recent = session.scalars(
        sa.select(Message)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == Direction.INBOUND,
            Message.case_id.is_(None),
        )
        .order_by(Message.id.desc())
        .limit(50)
    )
    found = next((m for m in recent if m.text == case.text), None)
    if found is not None:
        found.case_id = case.id
