"""A runner for the long-work tests: it "processes" `items` numbers in chunks, each chunk writing one
audit row per number in the same transaction as its checkpoint, so a test can count what was done.

With `pause_flag` set it stops after its second chunk, once, to be killed there: it creates the flag file
and sleeps; a later run sees the flag and goes on."""

from __future__ import annotations

import os
import time
from typing import Any

from backend.app.db import session_scope
from backend.services import audit
from backend.work.runs import Progress, Runner, WorkError, register

KIND = "test.count"


def count(progress: Progress) -> dict[str, Any]:
    items = int(progress.params["items"])
    chunk = int(progress.params.get("chunk", 10))
    if progress.params.get("refuse"):
        raise WorkError("the file is not a spreadsheet")
    if progress.params.get("crash"):
        raise RuntimeError("0912 345 678 is not a number")  # an error quoting input must not reach staff
    progress.total = items
    start = int((progress.cursor or {}).get("next", 0))
    for chunks_done, first in enumerate(range(start, items, chunk), start=1):
        with session_scope() as session:
            for n in range(first, min(first + chunk, items)):
                audit.record(session, "test.item", subject=("item", n))
                if n % 7 == 3:
                    progress.error(n, f"item {n} is odd")
            progress.advance(min(chunk, items - first), processed=min(chunk, items - first))
            progress.checkpoint(session, {"next": first + chunk})
        flag = progress.params.get("pause_flag")
        if flag and chunks_done == 2 and not os.path.exists(flag):
            open(flag, "w").close()
            time.sleep(120)
        if progress.params.get("slow"):
            time.sleep(float(progress.params["slow"]))
    return {"items": items}


RUNNER = register(
    Runner(kind=KIND, run=count, title="Long work", result_url=lambda job: f"/staff/work/{job.id}")
)
