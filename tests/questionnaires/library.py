"""The built-in questionnaire library as the library tests read it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from questionnaires.model import Questionnaire, Severity
from questionnaires.scoring import Evaluation

LIBRARY = Path(__file__).resolve().parents[2] / "content" / "questionnaires"
FILES = sorted(LIBRARY.glob("*.yaml"))  # not subdirectories such as messages/
EXPECTED = {
    "post_discharge",
    "post_operative",
    "hypertension_follow_up",
    "diabetes_follow_up",
    "inpatient_satisfaction",
    "outpatient_satisfaction",
    "physical_exam_satisfaction",
    "staff_satisfaction",
    "department_mutual_evaluation",
    "nps",
    "phq9",
    "gad7",
}
NATIONAL_DIMENSIONS = {"environment", "attitude", "communication", "waiting", "cost_transparency", "overall"}
PATIENT_SURVEYS = ("inpatient_satisfaction", "outpatient_satisfaction", "physical_exam_satisfaction")
FREQUENCY = ("not_at_all", "several_days", "more_than_half", "nearly_every_day")  # PHQ/GAD codes, 0-3


def _raw(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def library() -> dict[str, Questionnaire]:
    from questionnaires.loader import parse_questionnaire

    parsed = [parse_questionnaire(_raw(path)) for path in FILES]
    return {q.id: q for q in parsed}


def q(questionnaire_id: str) -> Questionnaire:
    return library()[questionnaire_id]


def codes(ev: Evaluation) -> dict[str, Severity]:
    return {f.code: f.severity for f in ev.findings}
