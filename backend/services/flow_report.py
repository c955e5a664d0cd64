"""Drop-off per flow step: how many conversations reached each step, and how many stopped there."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import ConversationStep
from bots.flows import Flow


@dataclass(frozen=True, slots=True)
class StepRow:
    step: str
    reached: int  # conversations that entered the step (at least once)
    stopped: int  # ...whose last step in this flow version it is (gone, or still waiting there)
    end: bool  # an end step: stopping here is finishing

    @property
    def drop_off(self) -> float | None:
        """Share of those who reached the step and went no further (None for end steps)."""
        return None if self.end or not self.reached else self.stopped / self.reached


def drop_off(session: Session, flow: Flow) -> list[StepRow]:
    """One row per step of this flow version, in authored order."""
    where = (ConversationStep.flow_id == flow.id, ConversationStep.flow_version == flow.version)
    reached = dict(
        session.execute(
            sa.select(ConversationStep.step, sa.func.count(sa.distinct(ConversationStep.conversation_id)))
            .where(*where)
            .group_by(ConversationStep.step)
        ).all()
    )
    last_ids = (
        sa.select(sa.func.max(ConversationStep.id).label("id"))
        .where(*where)
        .group_by(ConversationStep.conversation_id)
        .subquery()
    )
    stopped = dict(
        session.execute(
            sa.select(ConversationStep.step, sa.func.count())
            .join(last_ids, last_ids.c.id == ConversationStep.id)
            .group_by(ConversationStep.step)
        ).all()
    )
    return [
        StepRow(step_id, int(reached.get(step_id, 0)), int(stopped.get(step_id, 0)), step.end)
        for step_id, step in flow.steps.items()
    ]
