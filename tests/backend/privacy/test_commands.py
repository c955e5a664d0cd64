"""The two data-rights commands, run in-process through the CLI's own parser: `replay-tombstones` after a
restore, refusing a damaged file, and `retention`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session

from backend.app.cli import main
from backend.app.settings import get_settings
from backend.models import Patient
from backend.models.base import utcnow
from tests import factories


def test_replay_tombstones_wipes_a_restored_patient_and_refuses_a_damaged_file(
    db: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    person = factories.patient(db, name="Eve Zhao")
    db.commit()
    path = get_settings().tombstone_file
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {
        "patient_id": person.id,
        "mrn_bidx": person.mrn_bidx,
        "kind": "anonymisation",
        "at": utcnow().isoformat(),
    }
    path.write_text(json.dumps(line) + "\n{broken\n")
    assert main(["replay-tombstones"]) == 2
    assert "line 2" in capsys.readouterr().err
    db.expire_all()
    assert db.get_one(Patient, person.id).name == "Eve Zhao"  # nothing applied
    path.write_text(json.dumps(line) + "\n")
    assert main(["replay-tombstones", "--file", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "rows_restored=1 wiped=1"
    db.expire_all()
    assert db.get_one(Patient, person.id).name == "—"


def test_the_retention_command_prints_each_kind(db: Session, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["retention"]) == 0
    out = capsys.readouterr().out
    assert "messages: 0" in out and "work_logs: 0" in out
