"""Time a 200,000-row encounter CSV through the import's dry run and confirm on PostgreSQL, and its peak
memory.

Seeds a fresh database (dropped afterwards) with 50,000 patients known to the source "HIS" (identifiers
blind-indexed as the import computes them) and six departments, writes a UTF-8 CSV of 200,000 visits with
Chinese headers (60 % outpatient visits, 40 % inpatient stays with a discharge time, one to three ICD-10
codes, 0.5 % rows with a problem), then runs the dry-run job and the confirm job (its check pass, the
apply pass through the batched visit verb, and the reconciliation) in a child process, so the peak resident
memory is the import's own. A confirm still running after four minutes is stopped at its next checkpoint
and its rate extrapolated from the chunks it applied (`confirm_finished` says which). Ends with one JSON
line: dry_run_rows_per_s, confirm_rows_per_s, apply_rows_per_s, peak_mb, and the CPU a row of the import
process and of its PostgreSQL backends (read from /proc) for the dry run and a finished confirm.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: `bench` is then a package on the path

from bench.harness import REPO_ROOT, fixed_env, migrated_database, report  # noqa: E402

PATIENTS = 50_000
ROWS = int(os.environ.get("CARELOOP_BENCH_IMPORT_ROWS", "200000"))  # smaller only while developing
# The confirm is stopped after this long (at its next checkpoint) to keep the bench under ten minutes.
CONFIRM_BUDGET_S = 240.0
DEPARTMENTS = ["0301", "0302", "0401", "0501", "0601", "0701"]
HEADERS = ["病案号", "住院号", "就诊类型", "科室代码", "入院时间", "出院时间", "诊断编码"]
CODES = ["I10", "E11.9", "J18.9", "K35.8", "I63.9", "N18.3"]

SEED = """
import sys
import sqlalchemy as sa
from backend.app.db import session_scope
from backend.models import Department, Patient, PatientIdentifier
n = int(sys.argv[1])
with session_scope() as session:
    session.add_all(Department(code=c, name=c, names={}) for c in sys.argv[2].split(","))
    for start in range(0, n, 5000):
        patients = [Patient(mrn=f"P{i:06d}", name=f"病人{i}", language="zh-CN", timezone="Asia/Shanghai")
                    for i in range(start, min(n, start + 5000))]
        session.add_all(patients)
        session.flush()
        session.execute(sa.insert(PatientIdentifier), [
            {"patient_id": p.id, "authority": "HIS", "type_code": "MR", "value": p.mrn,
             "value_bidx": PatientIdentifier.index(p.mrn)} for p in patients])
"""

CHILD = """
import json, resource, sys, threading, time
import sqlalchemy as sa
from pathlib import Path
from backend.app.db import session_scope
from backend.imports import service, storage
from backend.models import WorkJob
from backend.work.runs import run_job
from bench.harness import proc_cpu
path, rows, budget = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
def own_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
def pg_cpu():
    # the server processes of this database's connections (the pool keeps them open through a job)
    with session_scope() as session:
        pids = session.scalars(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).all()
    total = 0.0
    for pid in pids:
        try:
            total += proc_cpu(pid)[2]
        except (FileNotFoundError, ValueError):
            pass
    return total
with path.open("rb") as f:
    sha, _ = storage.store(f)
def state(job_id):
    with session_scope() as session:
        job = session.get_one(WorkJob, job_id)
        return job.done, dict(job.counts), job.state.value, job.failure
with session_scope() as session:
    dry_id = service.do_start_dry_run(session, kind="encounters", file=sha, name=path.name, source="HIS",
                                      encoding=None, staff_id=None).id
began, cpu0, pg0 = time.perf_counter(), own_cpu(), pg_cpu()
run_job(dry_id)
dry_s = time.perf_counter() - began
dry_cpu, dry_pg = own_cpu() - cpu0, pg_cpu() - pg0
with session_scope() as session:
    confirm_id = service.do_start_confirm(session, session.get_one(WorkJob, dry_id), staff_id=None).id
worker = threading.Thread(target=run_job, args=(confirm_id,))
began, cpu0, pg0 = time.perf_counter(), own_cpu(), pg_cpu()
worker.start()
checked_s = None
while worker.is_alive():
    worker.join(0.5)
    elapsed = time.perf_counter() - began
    done = state(confirm_id)[0]
    if checked_s is None and done >= rows:
        checked_s, checked_done = elapsed, done
    if elapsed > budget:  # stop at the next checkpoint: the chunks applied so far give the rate
        with session_scope() as session:
            session.execute(sa.update(WorkJob).where(WorkJob.id == confirm_id).values(cancel_requested=True))
        worker.join()
confirm_s = time.perf_counter() - began
confirm_cpu, confirm_pg = own_cpu() - cpu0, pg_cpu() - pg0
done, counts, confirm_state, failure = state(confirm_id)
checked_s = checked_s if checked_s is not None else confirm_s
applied = done - rows
print(json.dumps({"dry_s": dry_s, "dry_counts": state(dry_id)[1], "dry_state": state(dry_id)[2],
                  "dry_failure": state(dry_id)[3], "confirm_s": confirm_s, "checked_s": checked_s,
                  "applied": applied, "confirm_counts": counts, "confirm_state": confirm_state,
                  "confirm_failure": failure, "dry_cpu": dry_cpu, "dry_pg": dry_pg,
                  "confirm_cpu": confirm_cpu, "confirm_pg": confirm_pg,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_csv(path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADERS)
        for i in range(ROWS):
            day = 1 + i % 28
            month = 1 + (i // 28) % 11
            admitted = f"2026-{month:02d}-{day:02d} {8 + i % 10:02d}:{i % 60:02d}"
            inpatient = i % 5 < 2
            discharged = f"2026-{month:02d}-{min(28, day + 3):02d} 10:00" if inpatient else ""
            codes = ",".join(CODES[(i + k) % len(CODES)] for k in range(1 + i % 3))
            department = DEPARTMENTS[i % len(DEPARTMENTS)] if i % 200 else "9999"  # 0.5 %: unknown code
            writer.writerow(
                [f"P{i % PATIENTS:06d}", f"V{i:07d}", "住院" if inpatient else "门诊", department, admitted,
                 discharged, codes]
            )  # fmt: skip


def child(env: dict[str, str], code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=900, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"bench child failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch, migrated_database(fixed_env) as url:
        env = {**fixed_env(url), "CARELOOP_IMPORT_DIR": str(Path(scratch) / "imports")}
        started = time.perf_counter()
        child(env, SEED, str(PATIENTS), ",".join(DEPARTMENTS))
        engine = sa.create_engine(url)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))
        engine.dispose()
        path = Path(scratch) / "encounters.csv"
        write_csv(path)
        print(f"seeded {PATIENTS:,} patients, wrote {ROWS:,} rows in {time.perf_counter() - started:.1f} s")
        out = child(env, CHILD, str(path), str(ROWS), str(CONFIRM_BUDGET_S))
        figures = json.loads(out.strip().splitlines()[-1])
        print(f"dry run: {figures['dry_state']} in {figures['dry_s']:.1f} s {figures['dry_counts']}")
        print(
            f"confirm: {figures['confirm_state']} after {figures['confirm_s']:.1f} s (check pass "
            f"{figures['checked_s']:.1f} s, {figures['applied']:,} rows applied) {figures['confirm_counts']}"
        )
        print(
            f"CPU: dry run {figures['dry_cpu']:.1f} s import process + {figures['dry_pg']:.1f} s PostgreSQL; "
            f"confirm {figures['confirm_cpu']:.1f} s + {figures['confirm_pg']:.1f} s"
        )
        if figures["dry_failure"] or figures["confirm_failure"]:
            print(f"failures: {figures['dry_failure']} / {figures['confirm_failure']}")
    # A confirm that did not finish within its budget: its rate is the check pass (over every row) plus
    # the apply pass at the rate its committed chunks were applied, extrapolated to every row.
    apply_s = figures["confirm_s"] - figures["checked_s"]
    apply_rate = figures["applied"] / apply_s if apply_s > 0 and figures["applied"] > 0 else float("nan")
    finished = figures["confirm_state"] == "done"
    confirm_s = figures["confirm_s"] if finished else figures["checked_s"] + ROWS / apply_rate
    report(
        {
            "rows": ROWS,
            "dry_run_rows_per_s": round(ROWS / figures["dry_s"]),
            "confirm_rows_per_s": round(ROWS / confirm_s),
            "apply_rows_per_s": round(apply_rate),
            "confirm_finished": finished,
            "peak_mb": round(figures["peak_mb"], 1),
            # CPU a row (the import process, its PostgreSQL backends): load inflates these less than wall
            # time; the confirm's only when it finished (else it covers the check and part of the apply)
            "dry_run_cpu_ms_per_row": round(1000 * figures["dry_cpu"] / ROWS, 3),
            "dry_run_pg_cpu_ms_per_row": round(1000 * figures["dry_pg"] / ROWS, 3),
            "confirm_cpu_ms_per_row": round(1000 * figures["confirm_cpu"] / ROWS, 3) if finished else None,
            "confirm_pg_cpu_ms_per_row": round(1000 * figures["confirm_pg"] / ROWS, 3) if finished else None,
        }
    )


if __name__ == "__main__":
    main()
