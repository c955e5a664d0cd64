"""Time the daily follow-up planner over 1,000,000 encounters in PostgreSQL, and its peak memory.

Seeds a fresh database (dropped afterwards) with 200,000 patients and 1,000,000 encounters spread
over two years, with three plans: every discharge at days 3/15/30, hypertension (I10) at days 7/30,
and a 30 % sample of outpatient visits at day 1. The planner runs in a child process so its peak
resident memory (ru_maxrss) is its own. Runs twice: the first run creates the tasks, the second
finds nothing new (it is idempotent). Ends with one JSON line: {"seconds": ..., "peak_mb": ...}.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: `bench` is then a package on the path

from bench.harness import REPO_ROOT, encrypted_values, fixed_env, migrated_database, report  # noqa: E402

PATIENTS, ENCOUNTERS = 200_000, 1_000_000


def seed(url: str) -> None:
    engine = sa.create_engine(url)
    tokens = encrypted_values()  # names and diagnoses are encrypted at rest
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO departments (code, name, names) SELECT 'D' || i, 'Department ' || i, '{}'"
                " FROM generate_series(1, 6) i"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO patients (mrn, mrn_bidx, name, sex, language, timezone, deceased, dispute, do_not_disturb,"
                " invalid_contact, frequent_visitor, created_at, updated_at)"
                " SELECT 'v1:bench', md5(i::text), :name_token, 'unknown', 'zh-CN', 'Asia/Shanghai', i % 100 = 0, false,"
                " i % 50 = 0, false, false, now(), now() FROM generate_series(1, :n) i"
            ),
            {"n": PATIENTS, "name_token": tokens["name_token"]},
        )
        conn.execute(
            sa.text(
                "INSERT INTO encounters (patient_id, kind, department_id, started_at, ended_at, diagnoses,"
                " primary_diagnosis)"
                " SELECT (i % :p) + 1, CASE WHEN i % 4 = 0 THEN 'outpatient' ELSE 'discharge' END, (i % 6) + 1,"
                " now() - ((i % 730) || ' days')::interval - ((i % 24) || ' hours')::interval"
                "   - CASE WHEN i % 4 = 0 THEN interval '2 hours' ELSE interval '4 days' END,"
                " now() - ((i % 730) || ' days')::interval - ((i % 24) || ' hours')::interval, CAST(:dx AS json),"
                " CASE WHEN i % 5 = 0 THEN 'I10' ELSE 'K35.8' END FROM generate_series(1, :n) i"
            ),
            {"p": PATIENTS, "n": ENCOUNTERS, "dx": tokens["diagnoses_token"]},
        )
        conn.execute(
            sa.text(
                "INSERT INTO follow_up_plans (name, active, questionnaire_id, encounter_kinds, department_ids, ward_ids,"
                " diagnosis_prefixes, procedure_codes, anchor, offsets_days, send_hour, channels, sample_ratio,"
                " resend_after_hours, attempts_per_channel, excluded_flags, created_at) VALUES"
                " ('discharges', true, 'post_discharge', '[\"discharge\"]', '[]', '[]', '[]', '[]', 'discharge',"
                "  '[3, 15, 30]', 10, '[\"webchat\", \"sms\"]', 1.0, 48, 2,"
                '  \'["deceased", "dispute", "do_not_disturb", "invalid_contact", "frequent_visitor"]\', now()),'
                " ('hypertension', true, 'hypertension_follow_up', '[\"discharge\", \"outpatient\"]', '[]', '[]',"
                "  '[\"I10\"]', '[]', 'discharge', '[7, 30]', 10, '[\"webchat\"]', 1.0, 48, 2, '[\"deceased\"]', now()),"
                " ('outpatient sample', true, 'outpatient_satisfaction', '[\"outpatient\"]', '[]', '[]', '[]', '[]',"
                "  'visit', '[1]', 10, '[\"webchat\"]', 0.3, 48, 2, '[\"deceased\"]', now())"
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()


CHILD = """
import json, resource, time
from backend.app.db import session_scope
from backend.followup.planner import run_planner
start = time.perf_counter()
with session_scope() as session:
    created = run_planner(session)
seconds = time.perf_counter() - start
print(json.dumps({"created": created, "seconds": seconds,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_planner(url: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=REPO_ROOT,
        env=fixed_env(url),
        capture_output=True,
        text=True,
        timeout=540,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    with migrated_database(fixed_env) as url:
        os.environ.update(fixed_env(url))  # the seed's tokens are made under the key the planner reads with
        started = time.perf_counter()
        seed(url)
        print(
            f"seeded {PATIENTS:,} patients and {ENCOUNTERS:,} encounters in {time.perf_counter() - started:.1f} s"
        )
        first = run_planner(url)
        print(
            f"planner, first run:  {first['created']:,} outreach tasks in {first['seconds']:.1f} s, "
            f"peak {first['peak_mb']:.0f} MB"
        )
        second = run_planner(url)
        print(f"planner, second run: {second['created']:,} new in {second['seconds']:.1f} s (idempotent)")
    report(
        {
            "seconds": round(first["seconds"], 2),
            "peak_mb": round(first["peak_mb"], 1),
            "tasks_created": int(first["created"]),
            "second_run_seconds": round(second["seconds"], 2),
            "encounters": ENCOUNTERS,
        }
    )


if __name__ == "__main__":
    _ = resource  # the child reports ru_maxrss
    main()
