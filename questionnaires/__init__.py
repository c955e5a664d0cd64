"""Questionnaires (FHIR R4 compatible): model, branching, validation, scoring, abnormal rules; pure."""
