"""The long-work pages: a nurse sees her own jobs and their progress, not a colleague's; an admin sees
all; filters that cannot be used are errors; the list exports what it shows; stopping a job is audited."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.models import AuditEvent, Role, WorkJob, WorkState
from backend.work import runs
from tests import factories
from tests.backend.security.test_staff_auth import _csrf, sign_in
from tests.backend.work import sample_runner


def _job(db: Session, owner_id: int, items: int = 12) -> WorkJob:
    job = runs.start(db, sample_runner.KIND, {"items": items, "chunk": 5}, owner_id)
    db.commit()
    return job


def test_a_nurse_watches_her_own_job_and_cannot_see_a_colleagues(client: TestClient, db: Session) -> None:
    nurse = factories.staff(db, username="nurse1")
    other = factories.staff(db, username="nurse2")
    db.commit()
    mine, theirs = _job(db, nurse.id), _job(db, other.id)
    runs.run_job(mine.id)
    assert sign_in(client, "nurse1").status_code == 303

    page = client.get(f"/staff/work/{mine.id}")
    assert page.status_code == 200
    assert 'value="100"' in page.text and "Finished" in page.text and "item 3 is odd" in page.text
    status = client.get(f"/staff/work/{mine.id}/status").json()
    assert status["state"] == "done" and status["finished"] is True and status["counts"] == {"processed": 12}
    assert (status["done"], status["total"], status["percent"], status["error_count"]) == (12, 12, 100, 2)
    assert client.get(f"/staff/work/{theirs.id}").status_code == 404
    assert client.get(f"/staff/work/{theirs.id}/status").status_code == 404
    listing = client.get("/staff/work")
    assert f'data-job="{mine.id}"' in listing.text and f'data-job="{theirs.id}"' not in listing.text


def test_the_list_filters_exports_and_names_an_unusable_filter(client: TestClient, db: Session) -> None:
    admin = factories.staff(db, username="boss", role=Role.MANAGER)
    nurse = factories.staff(db, username="nurse1")
    db.commit()
    finished, waiting = _job(db, nurse.id), _job(db, admin.id)
    runs.run_job(finished.id)
    assert sign_in(client, "boss").status_code == 303

    everything = client.get("/staff/work").text
    assert f'data-job="{finished.id}"' in everything and f'data-job="{waiting.id}"' in everything
    done_only = client.get("/staff/work?state=done").text
    assert f'data-job="{finished.id}"' in done_only and f'data-job="{waiting.id}"' not in done_only
    refused = client.get("/staff/work?state=sleeping")
    assert refused.status_code == 400 and "state" in refused.text

    exported = list(csv.reader(io.StringIO(client.get("/staff/work.csv?state=queued").text)))
    assert exported[0][:3] == ["id", "kind", "state"]
    assert [row[0] for row in exported[1:]] == [str(waiting.id)]
    actions = list(db.scalars(sa.select(AuditEvent.action)))
    assert "work.list" in actions and "work.export" in actions


def test_stopping_a_job_from_its_page_is_audited_and_it_never_runs(client: TestClient, db: Session) -> None:
    nurse = factories.staff(db, username="nurse1")
    db.commit()
    job = _job(db, nurse.id)
    assert sign_in(client, "nurse1").status_code == 303
    page = client.get(f"/staff/work/{job.id}")
    assert "Waiting to start" in page.text
    stopped = client.post(
        f"/staff/work/{job.id}/cancel", data={"csrf_token": _csrf(page.text)}, follow_redirects=False
    )
    assert stopped.status_code == 303
    forged = client.post(f"/staff/work/{job.id}/cancel", data={"csrf_token": "forged"})
    assert forged.status_code in (400, 403)
    runs.run_job(job.id)
    db.expire_all()
    assert db.get(WorkJob, job.id).state is WorkState.CANCELLED  # type: ignore[union-attr]
    assert (
        db.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "test.item"))
        == 0
    )
    assert db.scalar(sa.select(AuditEvent.action).where(AuditEvent.action == "work.cancel")) == "work.cancel"
