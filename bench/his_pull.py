"""Time a pull from a HIS database source on PostgreSQL: 2,000 patients in a HIS database's view with
Chinese column names, read from the watermark into a dry run, confirmed, then pulled again (everything
unchanged).

Creates a migrated CareLoop database and a separate HIS database (both dropped afterwards), fills the HIS
table, then, in a child process with the bench's fixed keys, saves the source and runs the pull (the read
into a stored file and the dry run), its confirm (the patient verb a row), and a second pull. Ends with
one JSON line: pull_rows_per_s (read and dry run together), confirm_rows_per_s, repull_s (the second pull
reads only the rows at the watermark, all unchanged).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: `bench` is then a package on the path

from bench.harness import REPO_ROOT, fixed_env, migrated_database, pg_connect, postgres_database, report  # noqa: E402

ROWS = int(os.environ.get("CARELOOP_BENCH_HIS_ROWS", "2000"))  # the confirm is the per-row patient verb

HIS_TABLE = """
CREATE TABLE 病人信息 (序号 SERIAL PRIMARY KEY, 病案号 VARCHAR(20), 病人姓名 VARCHAR(50), 性别 VARCHAR(4),
  出生日期 DATE, 联系电话 VARCHAR(20), 更新时间 TIMESTAMP NOT NULL);
CREATE VIEW v_患者 AS SELECT 病案号, 病人姓名, 性别, 出生日期, 联系电话, 更新时间 FROM 病人信息;
INSERT INTO 病人信息 (病案号, 病人姓名, 性别, 出生日期, 联系电话, 更新时间)
SELECT 'P' || lpad(i::text, 6, '0'), '病人' || i, CASE WHEN i % 2 = 0 THEN '女' ELSE '男' END,
       DATE '1950-01-01' + (i % 20000), '138' || lpad(i::text, 8, '0'), TIMESTAMP '2026-12-01 00:00' + i * INTERVAL '1 second'
FROM generate_series(1, {rows}) AS i;
"""

CHILD = """
import json, sys, time
from backend.app.db import session_scope
from backend.imports.columns import ImportKind
from backend.imports.his_sources import HisForm, do_save_source, do_start_pull
from backend.imports.service import do_start_confirm
from backend.models import HisSource, WorkJob
from backend.work import runs

form = HisForm(name="HIS", url=sys.argv[1], query="SELECT * FROM v_患者 WHERE 更新时间 >= :since",
               kind=ImportKind.PATIENTS, columns={}, watermark_column="更新时间", watermark=None,
               interval_minutes=60, auto_apply=False, enabled=True)
with session_scope() as s:
    source_id = do_save_source(s, source_id=None, version=0, form=form, by=None, ip=None).id

def timed(start):
    with session_scope() as s:
        job_id = start(s)
    began = time.perf_counter()
    runs.run_job(job_id)
    took = time.perf_counter() - began
    with session_scope() as s:
        job = s.get(WorkJob, job_id)
        assert job.state.value == "done", job.failure
        return job_id, took, dict(job.counts)

def pull(s):
    return do_start_pull(s, s.get(HisSource, source_id), by=None).id

dry, pull_s, pull_counts = timed(pull)
_confirm, confirm_s, confirm_counts = timed(lambda s: do_start_confirm(s, s.get(WorkJob, dry), staff_id=None).id)
_again, repull_s, repull_counts = timed(pull)
with session_scope() as s:
    watermark = s.get(HisSource, source_id).watermark
print(json.dumps({"pull_s": pull_s, "confirm_s": confirm_s, "repull_s": repull_s, "pull": pull_counts,
                  "confirm": confirm_counts, "repull": repull_counts, "watermark": watermark}))
"""


def main() -> None:
    with postgres_database() as (his_url, his_name), migrated_database(fixed_env) as url:
        with pg_connect(his_name) as conn:
            conn.execute(HIS_TABLE.replace("{rows}", str(ROWS)))  # type: ignore[arg-type]
        done = subprocess.run(
            [sys.executable, "-c", CHILD, his_url], cwd=REPO_ROOT, env=fixed_env(url), capture_output=True,
            text=True, timeout=540, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            print(done.stdout, done.stderr, file=sys.stderr)
            raise SystemExit(done.returncode)
        figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{ROWS} HIS rows: pull (read + dry run) {figures['pull_s']:.1f} s {figures['pull']}")
    print(f"confirm {figures['confirm_s']:.1f} s {figures['confirm']}; watermark {figures['watermark']}")
    print(f"second pull {figures['repull_s']:.1f} s {figures['repull']}")
    report(
        {
            "rows": ROWS,
            "pull_rows_per_s": round(ROWS / figures["pull_s"]),
            "confirm_rows_per_s": round(ROWS / figures["confirm_s"]),
            "repull_s": round(figures["repull_s"], 2),  # reads only the rows at the watermark
        }
    )


if __name__ == "__main__":
    main()
