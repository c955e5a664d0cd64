"""Running import jobs in the tests: store a file, run its dry run and confirm to the end, read the job."""

from __future__ import annotations

import io

from sqlalchemy.orm import Session

from backend.imports import service, storage
from backend.models import WorkJob
from backend.work import runs


def stored(data: bytes) -> str:
    sha, _size = storage.store(io.BytesIO(data))
    return sha


def dry_run(
    db: Session, kind: str, data: bytes, *, source: str = "HIS", encoding: str | None = None
) -> WorkJob:
    job = service.do_start_dry_run(
        db, kind=kind, file=stored(data), name="upload.csv", source=source, encoding=encoding, staff_id=None
    )
    db.commit()
    runs.run_job(job.id)
    return reloaded(db, job.id)


def confirm(db: Session, dry: WorkJob) -> WorkJob:
    job = service.do_start_confirm(db, dry, staff_id=None)
    db.commit()
    runs.run_job(job.id)
    return reloaded(db, job.id)


def reloaded(db: Session, job_id: int) -> WorkJob:
    db.expire_all()
    job = db.get(WorkJob, job_id)
    assert job is not None
    return job
