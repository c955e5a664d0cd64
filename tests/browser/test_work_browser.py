"""The long-work page in Chromium: the bar moves while a job runs and the page shows the result when it
ends, without a reload by hand; the list and the job page have no serious axe-core violations."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy.orm import Session

from backend.work import runs
from tests import factories
from tests.backend.work import sample_runner
from tests.browser import axe
from tests.browser.test_cases_browser import _sign_in

pytestmark = pytest.mark.browser


def test_the_bar_follows_a_running_job_to_its_end(live_server: str, browser: Any, db: Session) -> None:
    nurse = factories.staff(db, username="nurse1")
    db.commit()
    job = runs.start(db, sample_runner.KIND, {"items": 40, "chunk": 5, "slow": 0.4}, nurse.id)
    db.commit()
    page = _sign_in(browser, live_server, "nurse1")
    page.goto(f"{live_server}/staff/work/{job.id}")
    assert axe.describe(axe.violations(page)) == ""
    worker = threading.Thread(target=runs.run_job, args=(job.id,))
    worker.start()
    bar = page.locator(f"#work-bar-{job.id}")
    # part-way: the poll moved the bar without a reload
    page.wait_for_function(
        "id => { const b = document.getElementById('work-bar-' + id);"
        " return b && b.value > 0 && b.value < 100 }",
        arg=job.id,
        timeout=20_000,
    )
    worker.join(timeout=60)
    page.wait_for_selector("#work-counts", timeout=20_000)  # the finished page, reloaded by the script
    assert bar.get_attribute("value") == "100"
    assert "Finished" in page.inner_text(".work-state")
    assert page.locator("#work-errors tbody tr").count() == 6
    page.goto(f"{live_server}/staff/work")
    assert page.locator(f'tr[data-job="{job.id}"]').count() == 1
    assert axe.describe(axe.violations(page)) == ""
    page.context.close()
