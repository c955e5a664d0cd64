"""Time audience previews and a batch send on PostgreSQL with 1,000,000 encounters and 300,000 patients.

The seeded database is cached between runs (`careloop_bench_admin`, kept, rebuilt when the schema's
migration head or this script's seed version changes): seeding takes a few minutes. Each run first clears
what the previous run's send left (batches, outbox, messages, consent events, jobs).

- `plan_preview_ms`: the population preview of an unsaved plan (every discharge of two departments at
  days 3, 15 and 30, channels WeChat then SMS), with the overlaps of the three active seeded plans;
  median of 5 runs (`plan_preview_load`: the load average when they started). Then 5 more with parallel
  query off, where the PostgreSQL backend does all of the database's work: their CPU time here
  (`plan_preview_cpu_ms`) and in that backend (`plan_preview_pg_cpu_ms`), medians, and their wall time
  (`plan_preview_serial_ms`). On a shared machine the CPU figures are what the preview costs; the wall
  time is that plus the wait for a core.
- `batch_preview_ms`: the gate preview of a segment of about 100,000 patients (Chinese-speaking, with a
  discharge), each judged by the outbox gates (consent, exclusions, reachability, quiet hours, caps);
  median of 3 runs.
- The send: a segment of 5,000 patients with real (encrypted) phone numbers is previewed and sent as long
  work to a local fake Twilio (in this process), the sender running inline. While it runs, 1 % of the
  segment revoke their consent, spread over the run. `revoked_sent` counts those whose message was sent
  after their revocation had committed (must be 0); `send_per_s` is the whole batch's rate.
- The per-sender rate: the send runs with `send_rates` of 50 messages a second for the fake Twilio's
  sender, the slots kept in Redis (127.0.0.1:6379, the limiter the workers share) although the sender
  runs inline here. `rate_error_pct` is how far the rate Twilio saw while the sender had work (see
  `_rate`) is from 50, in per cent of it (target ≤ 5).

Quiet hours are off (the bench must not depend on the hour it runs at). Ends with one JSON line.
"""

from __future__ import annotations

import base64
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: `bench` is then a package on the path

from bench.harness import PG_HOST, PG_PORT, PG_USER, REPO_ROOT, pg_connect, proc_cpu, report  # noqa: E402

PATIENTS, ENCOUNTERS = 300_000, 1_000_000
SEND_SEGMENT = 5_000  # patients with real numbers, language "en": every 60th patient
REVOKE_SHARE = 0.01
SEED_VERSION = "admin-4"
SEND_RATE = 50.0  # messages per second configured for the fake Twilio's sender
SENDER = "+15005550006"
RATE_REDIS = "redis://127.0.0.1:6379/0"
DB_NAME = "careloop_bench_admin"
URL = f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{DB_NAME}"
DATA_KEY = base64.b64encode(bytes(range(32))).decode()


def _env() -> dict[str, str]:
    return {
        "DATABASE_URL": URL,
        "CARELOOP_ENV_FILE": "/nonexistent/careloop.env",
        "CARELOOP_SECRET_KEY": "bench-secret-" + "x" * 40,
        "CARELOOP_DATA_KEY": DATA_KEY,
        "CARELOOP_QUIET_HOURS_START": "0",
        "CARELOOP_QUIET_HOURS_END": "0",
        "CARELOOP_MAX_MESSAGES_PER_DAY": "50",
        "CARELOOP_OUTREACH_APPROVAL_THRESHOLD": "1000000",
    }


def _head() -> str:
    versions = sorted(p.name for p in (REPO_ROOT / "backend" / "migrations" / "versions").glob("0*.py"))
    return f"{SEED_VERSION}:{versions[-1]}"


def _cached() -> bool:
    with pg_connect() as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone() is None:
            return False
    engine = sa.create_engine(URL)
    try:
        with engine.connect() as conn:
            marker = conn.execute(sa.text("SELECT version FROM bench_seed")).scalar()
    except sa.exc.SQLAlchemyError:
        marker = None
    finally:
        engine.dispose()
    return marker == _head()


def _create_and_migrate() -> None:
    with pg_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run(
        [sys.executable, "-m", "backend.app.cli", "migrate"],
        cwd=REPO_ROOT,
        env={**os.environ, **_env(), "PYTHONPATH": str(REPO_ROOT)},
        check=True,
        capture_output=True,
        timeout=300,
    )


def _seed() -> None:
    """Patients (a third each zh-CN, vi; every 60th en with a real number), encounters over two years."""
    from backend.security.crypto import current_cipher

    # one sealed MRN for all (each row's blind index differs): samples decrypt what they show
    sealed_mrn = current_cipher().encrypt("mrn", "BENCH")
    sealed_name = current_cipher().encrypt("patient_name", "Bench Patient")  # loaded through the model
    sealed_birth = current_cipher().encrypt("birth_date", date(1960, 5, 17).isoformat())
    engine = sa.create_engine(URL)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO departments (code, name, names) SELECT 'D' || i, 'Department ' || i, '{}'"
                " FROM generate_series(1, 6) i"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO patients (mrn, mrn_bidx, name, sex, birth_date, birth_year, language, timezone, phone, phone_bidx,"
                " wechat_openid_bidx, deceased, dispute, do_not_disturb, invalid_contact, frequent_visitor,"
                " created_at, updated_at)"
                " SELECT :mrn, md5('m' || i), :name, 'unknown', :birth, 1940 + (i % 68),"
                " CASE WHEN i % 60 = 0 THEN 'en' WHEN i % 3 = 0 THEN 'vi' ELSE 'zh-CN' END, 'Asia/Shanghai',"
                " NULL, md5('p' || i), CASE WHEN i % 4 = 0 THEN md5('w' || i) END, i % 100 = 2, false,"
                " i % 50 = 2, i % 70 = 3, false, now(), now() FROM generate_series(1, :n) i"
            ),
            {"n": PATIENTS, "mrn": sealed_mrn, "name": sealed_name, "birth": sealed_birth},
        )
        conn.execute(
            sa.text(
                "INSERT INTO encounters (patient_id, kind, department_id, started_at, ended_at, diagnoses,"
                " primary_diagnosis, updated_at)"
                " SELECT (i % :p) + 1, CASE WHEN i % 4 = 0 THEN 'outpatient' ELSE 'discharge' END, (i % 6) + 1,"
                " now() - ((i % 730) || ' days')::interval - ((i % 24) || ' hours')::interval"
                "   - CASE WHEN i % 4 = 0 THEN interval '2 hours' ELSE interval '4 days' END,"
                " now() - ((i % 730) || ' days')::interval - ((i % 24) || ' hours')::interval, '[]',"
                " CASE WHEN i % 5 = 0 THEN 'I10' WHEN i % 7 = 0 THEN 'I21.4' ELSE 'K35.8' END, now()"
                " FROM generate_series(1, :n) i"
            ),
            {"p": PATIENTS, "n": ENCOUNTERS},
        )
        conn.execute(
            sa.text(
                "INSERT INTO consent_events (patient_id, purpose, channel, granted, at, source, evidence)"
                " SELECT i, 'care', 'sms', false, now() - interval '30 days', 'bench', '{}'"
                " FROM generate_series(6, :n, 40) i"
            ),
            {"n": PATIENTS},
        )
        conn.execute(
            sa.text(
                "INSERT INTO follow_up_plans (name, active, questionnaire_id, encounter_kinds, department_ids, ward_ids,"
                " diagnosis_prefixes, procedure_codes, anchor, offsets_days, send_hour, channels, sample_ratio,"
                " resend_after_hours, attempts_per_channel, excluded_flags, created_at) VALUES"
                " ('discharges', true, 'post_discharge', '[\"discharge\"]', '[]', '[]', '[]', '[]', 'discharge',"
                "  '[3, 15, 30]', 10, '[\"wechat\", \"sms\"]', 1.0, 48, 2, '[\"deceased\"]', now()),"
                " ('hypertension', true, 'hypertension_follow_up', '[\"discharge\", \"outpatient\"]', '[]', '[]',"
                "  '[\"I10\"]', '[]', 'discharge', '[7, 30]', 10, '[\"sms\"]', 1.0, 48, 2, '[\"deceased\"]', now()),"
                " ('heart attack', true, 'post_mi', '[\"discharge\"]', '[]', '[]', '[\"I21\"]', '[]', 'discharge',"
                "  '[7, 14]', 10, '[\"sms\"]', 0.5, 48, 2, '[\"deceased\"]', now())"
            )
        )
    _real_numbers()
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE bench_seed (version text)"))
        conn.execute(sa.text("INSERT INTO bench_seed VALUES (:v)"), {"v": _head()})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()


def _real_numbers() -> None:
    """Encrypted, valid mobile numbers for the send segment (the "en" patients), set through the model."""
    from backend.app.db import session_scope
    from backend.models import Patient

    with session_scope() as session:
        ids = list(
            session.scalars(sa.select(Patient.id).where(Patient.language == "en").order_by(Patient.id))
        )
    for start in range(0, len(ids), 2000):
        with session_scope() as session:
            for patient in session.scalars(
                sa.select(Patient).where(Patient.id.in_(ids[start : start + 2000]))
            ):
                patient.phone = f"+86139{patient.id:08d}"


def _clear_last_run() -> None:
    engine = sa.create_engine(URL)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM outreach_previews"))
        conn.execute(sa.text("DELETE FROM outreach_batches"))
        conn.execute(sa.text("DELETE FROM outbox"))
        conn.execute(sa.text("DELETE FROM messages"))
        conn.execute(sa.text("DELETE FROM conversations"))
        conn.execute(sa.text("DELETE FROM work_jobs"))
        conn.execute(sa.text("DELETE FROM consent_events WHERE source <> 'bench'"))
        conn.execute(sa.text("DELETE FROM audit_events"))
        conn.execute(sa.text("DELETE FROM staff_users WHERE username = 'bench'"))  # made again below
    engine.dispose()


def _ms(run: object, times: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(times):
        started = time.perf_counter()
        result = run()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


def _cpu_ms(session: object, run: object, times: int) -> tuple[float, float, float, float]:
    """Median wall, this process's CPU and the PostgreSQL backend's CPU (ms) of `run`, with parallel query
    off so that the backend does all of the database's work (its parallel workers come and go between two
    readings of /proc); and the wall time of those runs."""
    pid = session.scalar(sa.text("SELECT pg_backend_pid()"))  # type: ignore[attr-defined]
    session.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))  # type: ignore[attr-defined]
    walls, ours, theirs = [], [], []
    for _ in range(times):
        wall, cpu, pg = time.perf_counter(), time.process_time(), proc_cpu(pid)[2]
        run()  # type: ignore[operator]
        walls.append((time.perf_counter() - wall) * 1000)
        ours.append((time.process_time() - cpu) * 1000)
        theirs.append((proc_cpu(pid)[2] - pg) * 1000)
    session.execute(sa.text("RESET max_parallel_workers_per_gather"))  # type: ignore[attr-defined]
    return (statistics.median(ours), statistics.median(theirs), statistics.median(walls), os.getloadavg()[0])


def main() -> None:
    os.environ.update(_env())
    from backend.app.settings import get_settings

    get_settings.cache_clear()
    if _cached():
        print(f"reusing the seeded database {DB_NAME}")
    else:
        started = time.perf_counter()
        _create_and_migrate()
        _seed()
        print(
            f"seeded {PATIENTS:,} patients, {ENCOUNTERS:,} encounters in {time.perf_counter() - started:.0f} s"
        )
    _clear_last_run()

    from tests.channels.fake_twilio import FakeTwilio

    with FakeTwilio() as fake:
        os.environ.update(
            {
                "CARELOOP_TWILIO_ACCOUNT_SID": fake.account_sid,
                "CARELOOP_TWILIO_AUTH_TOKEN": fake.auth_token,
                "CARELOOP_TWILIO_API_BASE": fake.base_url,
                "CARELOOP_TWILIO_SMS_FROM": SENDER,
                "CARELOOP_SEND_RATES": f'{{"twilio:{SENDER}": {SEND_RATE}}}',
            }
        )
        get_settings.cache_clear()
        figures = _measure(fake)
        figures.update(_rate(fake))
    report(figures)


def _shared_limiter() -> None:
    """The sender's limiter with its slots in Redis, as on workers (the inline sender has no Redis URL)."""
    from redis import Redis

    from backend.outbox import rate

    Redis.from_url(RATE_REDIS).delete(f"{rate.KEY_PREFIX}twilio:{SENDER}")
    rate.reset_send_rate()
    rate._shared.append(rate.SendRate(RATE_REDIS))


def _rate(fake: object) -> dict[str, object]:
    """The rate Twilio saw while the sender had work: the batch job queues 500 recipients, sends them,
    queues the next 500, so the sends come in bursts with the queueing between them (on workers the two
    overlap). A gap of more than five slots ends a burst; the rate is the sends after each burst's first
    over the bursts' time, and `send_per_s` keeps the whole batch's rate, gaps and all."""
    created = sorted(m.created for m in fake.messages if m.created is not None)  # type: ignore[attr-defined]
    bursts: list[list[datetime]] = []
    for at in created:
        if bursts and (at - bursts[-1][-1]).total_seconds() <= 5 / SEND_RATE:
            bursts[-1].append(at)
        else:
            bursts.append([at])
    counted = [b for b in bursts if len(b) >= 20]
    sends = sum(len(b) - 1 for b in counted)
    seconds = sum((b[-1] - b[0]).total_seconds() for b in counted)
    measured = sends / seconds if seconds else 0.0
    error = abs(measured - SEND_RATE) / SEND_RATE * 100
    worst = max(
        (abs((len(b) - 1) / (b[-1] - b[0]).total_seconds() - SEND_RATE) / SEND_RATE * 100 for b in counted),
        default=0.0,
    )
    print(
        f"send rate: {measured:.2f}/s at Twilio over {len(counted)} bursts ({sends + len(counted):,} sends,"
        f" {seconds:.1f} s) for {SEND_RATE:g}/s configured: {error:.2f} % off (worst burst {worst:.2f} %)"
    )
    return {
        "send_rate_configured": SEND_RATE,
        "send_rate_measured": round(measured, 2),
        "rate_error_pct": round(error, 2),
        "rate_error_worst_burst_pct": round(worst, 2),
    }


def _measure(fake: object) -> dict[str, object]:
    from backend.app.db import session_scope
    from backend.audiences.filters import Audience
    from backend.audiences.plans import plan_population
    from backend.models import (
        Anchor,
        BatchPurpose,
        ConsentEvent,
        EncounterKind,
        FollowUpPlan,
        OutboxItem,
        OutboxStatus,
        Role,
        StaffUser,
        WorkJob,
    )
    from backend.models.base import utcnow
    from backend.outreach.batches import counts_now, do_create_batch, do_preview, do_send
    from backend.services.consents import do_revoke_consent
    from backend.work import runs
    from bots.domain import Channel, ConsentPurpose

    now = utcnow()
    with session_scope() as session:
        # kept from an earlier run on the cached database, or made now
        staff = session.scalars(sa.select(StaffUser).where(StaffUser.username == "bench")).first()
        if staff is None:
            staff = StaffUser(username="bench", display_name="Bench", roles={Role.MANAGER}, password_hash="x")
            session.add(staff)
            session.flush()
        staff_id = staff.id
    with session_scope() as session:
        draft = FollowUpPlan(
            name="draft",
            questionnaire_id="post_discharge",
            anchor=Anchor.DISCHARGE,
            encounter_kinds=["discharge"],
            department_ids=[1, 2],
            offsets_days=[3, 15, 30],
            channels=["wechat", "sms"],
            send_hour=10,
            sample_ratio=1.0,
            excluded_flags=["deceased", "dispute", "do_not_disturb", "invalid_contact"],
        )
        load = os.getloadavg()[0]
        plan_ms, population = _ms(lambda: plan_population(session, draft, now), 5)
        print(
            f"plan preview: {plan_ms:.0f} ms (load average {load:.1f}), {population.patients} patients,"
            f" overlaps {population.overlaps}"
        )
        plan_cpu, plan_pg_cpu, serial_ms, serial_load = _cpu_ms(
            session, lambda: plan_population(session, draft, now), 5
        )
        print(
            f"plan preview without parallel query: {serial_ms:.0f} ms (load average {serial_load:.1f}),"
            f" CPU {plan_cpu:.0f} ms here + {plan_pg_cpu:.0f} ms PostgreSQL"
        )
    with session_scope() as session:
        staff = session.get(StaffUser, staff_id)
        assert staff is not None
        big = do_create_batch(
            session,
            staff=staff,
            name="big",
            purpose=BatchPurpose.CARE,
            channel=Channel.SMS,
            messages={"zh-CN": "请预约复查。"},
            audience=Audience(languages=("zh-CN",), encounter_kinds=(EncounterKind.DISCHARGE,)),
        )
        batch_ms, counts = _ms(lambda: counts_now(session, big, now), 3)
        print(f"batch preview: {batch_ms:.0f} ms for {counts.total:,} patients: {counts.to_json()}")  # type: ignore[attr-defined]
        segment_size = counts.total  # type: ignore[attr-defined]
        small = do_create_batch(
            session,
            staff=staff,
            name="send",
            purpose=BatchPurpose.CARE,
            channel=Channel.SMS,
            messages={"en": "Please book your check-up."},
            audience=Audience(languages=("en",)),
        )
        preview = do_preview(session, small, staff)
        job = do_send(session, small, staff, preview.id)
        small_id, key, job_id = small.id, small.outbox_key, job.id
        recipients = preview.counts["send"]
    with session_scope() as session:
        ids = list(
            session.scalars(
                sa.select(sa.text("id")).select_from(sa.text("patients")).where(sa.text("language = 'en'"))
            )
        )
    revokers = random.Random(7).sample(ids, max(1, int(len(ids) * REVOKE_SHARE)))
    committed: dict[int, datetime] = {}
    _shared_limiter()
    worker = threading.Thread(target=runs.run_job, args=(job_id,))
    started = time.perf_counter()
    worker.start()
    for patient_id in revokers:  # spread over the run: the send takes seconds, not milliseconds
        time.sleep(0.02)
        with session_scope() as session:
            do_revoke_consent(
                session,
                patient_id=patient_id,
                purpose=ConsentPurpose.CARE,
                channel=Channel.SMS,
                source="bench:revoke",
            )
        committed[patient_id] = datetime.now(UTC)
    worker.join()
    seconds = time.perf_counter() - started
    with session_scope() as session:
        state = session.get(WorkJob, job_id)
        assert state is not None
        sent = {
            patient_id: sent_at
            for patient_id, sent_at in session.execute(
                sa.select(OutboxItem.patient_id, OutboxItem.sent_at).where(
                    OutboxItem.batch_id == key, OutboxItem.status == OutboxStatus.SENT
                )
            )
        }
        suppressed = session.scalar(
            sa.select(sa.func.count()).where(
                OutboxItem.batch_id == key, OutboxItem.status == OutboxStatus.SUPPRESSED
            )
        )
        _ = session.scalar(sa.select(sa.func.count()).select_from(ConsentEvent))
    revoked_sent = sum(1 for p, at in committed.items() if p in sent and sent[p] is not None and sent[p] > at)
    revoked_before_send = sum(1 for p in committed if p not in sent)
    print(
        f"send: job {state.state.value}, {len(sent):,} sent, {suppressed:,} suppressed of {recipients:,} previewed "
        f"in {seconds:.1f} s; {len(committed)} revoked mid-batch, {revoked_before_send} of them before their "
        f"turn, revoked_sent={revoked_sent}; the fake Twilio took {len(fake.messages):,}"  # type: ignore[attr-defined]
    )
    _ = small_id
    return {
        "plan_preview_ms": round(plan_ms, 1),
        "plan_preview_load": round(load, 1),
        "plan_preview_cpu_ms": round(plan_cpu, 1),
        "plan_preview_pg_cpu_ms": round(plan_pg_cpu, 1),
        "plan_preview_serial_ms": round(serial_ms, 1),
        "batch_preview_ms": round(batch_ms, 1),
        "batch_preview_patients": segment_size,
        "send_patients": len(ids),
        "sent": len(sent),
        "send_per_s": round(len(sent) / seconds, 1),
        "revoked_mid_batch": len(committed),
        "revoked_sent": revoked_sent,
        "encounters": ENCOUNTERS,
        "patients": PATIENTS,
    }


if __name__ == "__main__":
    main()
