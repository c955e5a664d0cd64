"""Every store of sealed data is rotated: encrypted columns, a kept HL7 message, media files named by rows,
and the files no row names (an import's reconciliation report, a patient's data export). After the job,
the old key leaves the ring and each one reads back through the code that serves it; a resumed job
finishes the files after the last name it checkpointed."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.imports import storage
from backend.imports.reconcile import report_kind
from backend.messaging.media import load_blob
from backend.models import Hl7Message, Message, Patient, WorkJob
from backend.models.integration import Hl7Status
from backend.privacy import export
from backend.security import file_stores, media_keys, rotation
from backend.security.crypto import current_cipher
from backend.work.runs import run_job, start
from tests.backend.security.test_media_rotation import PHOTO, _files
from tests.backend.security.test_phi_at_rest import KEY_A, KEY_B, _use_ring

REPORT = b"PK an import's reconciliation workbook"
BUNDLE = b'{"resourceType": "Bundle"}'
PDF = b"%PDF a patient's record"
HL7 = b"MSH|^~\\&|HIS|WARD|CARELOOP|H|20261207||ADT^A03|42|P|2.5\rPID|||MRN-9||Le^Van^An"


def _fill_every_store(db: Session) -> dict[str, int | str]:
    ids = _files(db)  # a message's photo, a case's x-ray, a call's answer audio
    db.add(Hl7Message(content_hash="a" * 64, status=Hl7Status.APPLIED, ack_code="AA", payload=HL7))
    db.commit()
    for job_id in (7, 8):
        storage.report_path(job_id).write_bytes(current_cipher().seal(report_kind(job_id), REPORT))
    export.store(9, "json", BUNDLE)
    export.store(9, "pdf", PDF)
    storage.store(iter([b"mrn,name\n1,x\n"]))  # an upload: the hospital's original, not sealed by us
    return ids


def _read_everything(db: Session, ids: dict[str, int | str]) -> None:
    db.expire_all()
    settings = get_settings()
    assert db.get_one(Patient, db.scalars(sa.select(Patient.id)).first()).name == "Nguyen Thi Lan"
    assert db.scalars(sa.select(Message.text)).first() == "see the photo"
    assert db.scalars(sa.select(Hl7Message.payload)).one() == HL7
    assert load_blob(settings, int(ids["message"]), str(ids["photo"])) == PHOTO
    for job_id in (7, 8):
        assert (
            current_cipher().unseal(report_kind(job_id), storage.report_path(job_id).read_bytes()) == REPORT
        )
    assert export.load(9, "json") == BUNDLE and export.load(9, "pdf") == PDF


def test_rotation_reseals_every_store_and_everything_reads_under_the_new_key_alone(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_ring(monkeypatch, current=KEY_A, previous=[], cipher="aes-gcm")
    ids = _fill_every_store(db)
    old_prefix = current_cipher().current_prefix
    _use_ring(monkeypatch, current=KEY_B, previous=[KEY_A], cipher="aes-gcm")
    new_prefix = current_cipher().current_prefix
    assert rotation.key_census(db)[old_prefix] > 0

    job = start(db, rotation.ROTATE_KIND, {}, None)
    db.commit()
    run_job(job.id)
    db.expire_all()
    done = db.get_one(WorkJob, job.id)
    assert done.state.value == "done" and done.error_count == 0, done.errors
    assert done.counts["files_rewritten"] == 4 and done.total == done.done
    census = rotation.key_census(db)
    assert set(census) == {new_prefix}, census

    _use_ring(monkeypatch, current=KEY_B, previous=[], cipher="aes-gcm")
    _read_everything(db, ids)
    for folder in (get_settings().import_dir, get_settings().data_export_dir):
        assert not list(folder.glob(".*.tmp"))


def test_a_killed_walk_of_the_files_resumes_after_its_checkpoint(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files' checkpoint names the last file finished: a job killed after it re-seals only what
    follows, and a file re-sealed twice counts as current (the walk is idempotent)."""
    _use_ring(monkeypatch, current=KEY_A, previous=[], cipher="aes-gcm")
    _fill_every_store(db)
    _use_ring(monkeypatch, current=KEY_B, previous=[KEY_A], cipher="aes-gcm")
    monkeypatch.setattr(file_stores, "CHUNK", 1)
    job = start(db, rotation.ROTATE_KIND, {}, None)
    db.commit()
    # a first worker got through the columns, the media and the first report, then was killed
    first = sorted(Path(get_settings().import_dir).glob("reconciliation-*.xlsx"))[0]
    renewed = current_cipher().reseal(report_kind(7), first.read_bytes())
    assert renewed is not None
    first.write_bytes(renewed)
    cursor = {
        "column": len(rotation.encrypted_columns()),
        "media_source": len(media_keys.SOURCES),
        "store": 0,
        "store_after": first.name,
    }
    db.execute(sa.update(WorkJob).where(WorkJob.id == job.id).values(cursor=cursor, total=4))
    db.commit()
    run_job(job.id)
    db.expire_all()
    done = db.get_one(WorkJob, job.id)
    assert done.state.value == "done" and done.error_count == 0
    # the first report was not walked again; the other report and both export files were
    assert done.counts.get("files_rewritten") == 3 and "rewritten" not in done.counts
    _use_ring(monkeypatch, current=KEY_B, previous=[], cipher="aes-gcm")
    assert current_cipher().unseal(report_kind(7), first.read_bytes()) == REPORT
    assert export.load(9, "json") == BUNDLE and export.load(9, "pdf") == PDF
