"""A questionnaire answered over chat (bots/survey.py) stored as a response, scored, findings to staff."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.followup.catalog import definition_of, latest_version
from backend.followup.responses import do_complete_response, do_save_answers, do_start_response
from backend.models import Conversation, Patient, QuestionnaireResponse, QuestionnaireVersion
from bots.domain import pick_language
from bots.effects import CompleteSurvey
from questionnaires.values import from_json


def take_survey(
    session: Session, conversation: Conversation, effect: CompleteSurvey
) -> QuestionnaireResponse | None:
    """Store the answers against the version they were given on; None when that version is gone."""
    if effect.version is not None:
        version = session.scalars(
            sa.select(QuestionnaireVersion).where(
                QuestionnaireVersion.questionnaire_id == effect.questionnaire_id,
                QuestionnaireVersion.version == effect.version,
            )
        ).first()
    else:
        version = latest_version(session, effect.questionnaire_id)
    patient = session.get(Patient, conversation.patient_id) if conversation.patient_id else None
    if version is None or patient is None:
        return None
    q = definition_of(version)
    response = do_start_response(
        session,
        version=version,
        patient_id=patient.id,
        channel=conversation.channel,
        language=pick_language(patient.language),
    )
    answers = {key: from_json(q.item(key), raw) for key, raw in effect.answers.items()}
    do_save_answers(session, response, q, answers, skipped=list(effect.skipped))
    do_complete_response(session, response)
    return response
