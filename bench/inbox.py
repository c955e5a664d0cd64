"""Staff inbox at scale: 100,000 open tasks and 1,000,000 messages in PostgreSQL, timed through the app.

Run from the repository root (no arguments needed):

    PYTHONPATH=. python bench/inbox.py

Creates a database of its own (``careloop_bench_<random>`` on 127.0.0.1:5432 as ``postgres``, dropped
at the end), runs ``careloop migrate``, and seeds it inside PostgreSQL (``INSERT … SELECT`` over
``generate_series``, the fastest bulk path: nothing crosses the wire): 12 departments with 2 wards
each, 50,000 patients with a visit each, 100,000 conversations (SMS and web chat per patient),
1,000,000 messages (10,000 of them on one patient's two conversations, the timeline measured), an
outbox row for every outbound SMS, and 100,000 open tasks over every queue, priority and SLA state
(a third claimed). Then it starts ``careloop serve`` on a free port, signs in a service-centre agent
(sees every department) and a Cardiology nurse through the real sign-in form, and times, on loopback
(the client's wall time, so an upper bound on the server's time), the median of 15 requests after 3
warm-ups of:

- ``first_page_ms``: the agent's ``/staff/inbox`` (counts per queue and the 50 most urgent of 100,000);
- ``filtered_page_ms``: ``/staff/inbox`` filtered by queue, priority, department, SLA state and ward;
- ``timeline_ms``: the patient's page ``/staff/patients/<id>`` (every section, the timeline of the
  patient's 10,000 messages newest first with their outbox status);
- ``push_ms``: with the nurse's ``/staff/inbox/events`` stream open, the time from committing a new
  finding's task (``do_raise_task``, Cardiology) to the stream's next ``counts`` event (median of 7).

Also printed: the nurse's first page (her department only), the worst push, and the server process's CPU
time per measured request (from /proc): these VMs are shared, and when wall times grow with the load
average the CPU figure shows whether our cost changed. Ends with one JSON line.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: `bench` is then a package on the path

from bench.harness import HOST, encrypted_values, fixed_env, migrated_database, report, server  # noqa: E402

DEPARTMENTS, PATIENTS, TASKS, MESSAGES = 12, 50_000, 100_000, 1_000_000
HEAVY_MESSAGES = 10_000  # on patient 1's two conversations: the timeline measured
PASSWORD = "bench-password-1"
RUNS, WARMUP, PUSHES = 15, 3, 7


SEED = [
    (
        "INSERT INTO departments (code, name, names) SELECT 'D' || i, 'Department ' || i, '{}'"
        " FROM generate_series(1, :d) i"
    ),
    (
        "INSERT INTO wards (department_id, code, name) SELECT (i + 1) / 2, 'W' || i, 'Ward ' || i"
        " FROM generate_series(1, :d * 2) i"
    ),
    (
        "INSERT INTO patients (mrn, mrn_bidx, name, sex, language, timezone, deceased, dispute, do_not_disturb,"
        " invalid_contact, frequent_visitor, created_at, updated_at)"
        " SELECT 'v1:bench', md5(i::text), :name_token, 'unknown', 'en', 'Asia/Shanghai', false, false,"
        " false, false, false, now(), now() FROM generate_series(1, :p) i"
    ),
    (
        "INSERT INTO encounters (patient_id, kind, department_id, ward_id, started_at, ended_at, diagnoses,"
        " primary_diagnosis, updated_at)"
        " SELECT i, 'discharge', (i % :d) + 1, (i % :d) * 2 + 1 + (i / :d) % 2,"
        " now() - ((i % 60) || ' days')::interval - interval '4 days', now() - ((i % 60) || ' days')::interval,"
        " CAST(:diagnoses_token AS json), 'I10', now() FROM generate_series(1, :p) i"
    ),
    (
        "INSERT INTO conversations (patient_id, channel, address, owner, created_at, last_message_at)"
        " SELECT (i + 1) / 2, CASE WHEN i % 2 = 1 THEN 'sms' ELSE 'webchat' END, 'addr-' || i,"
        " CASE WHEN i % 10 = 0 THEN 'staff' ELSE 'bot' END, now() - interval '90 days', now()"
        " FROM generate_series(1, :p * 2) i"
    ),
    # Patient 1's conversations (ids 1 and 2) get HEAVY_MESSAGES; the rest spread over the others.
    (
        "INSERT INTO messages (conversation_id, channel, direction, status, text, invalid_reply, created_at)"
        " SELECT c, CASE WHEN c % 2 = 1 THEN 'sms' ELSE 'webchat' END,"
        " CASE WHEN (i / 2) % 2 = 0 THEN 'inbound' ELSE 'outbound' END,"
        " CASE WHEN (i / 2) % 2 = 0 THEN 'processed' ELSE 'sent' END,"
        " :text_token, false,"
        " now() - interval '90 days' + (i * interval '7 seconds')"
        " FROM (SELECT i, CASE WHEN i <= :h THEN 1 + i % 2 ELSE 3 + i % (:p * 2 - 2) END AS c"
        "       FROM generate_series(1, :m) i) s"
    ),
    (
        "INSERT INTO outbox (message_id, patient_id, channel, kind, purpose, status, not_before, attempts,"
        " created_at, sent_at)"
        " SELECT m.id, c.patient_id, 'sms', 'reply', 'care', CASE WHEN m.id % 50 = 1 THEN 'suppressed' ELSE"
        " 'delivered' END, m.created_at, 1, m.created_at, m.created_at"
        " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        " WHERE m.direction = 'outbound' AND m.channel = 'sms'"
    ),
    # 100,000 open tasks: every queue and priority, due from 2 days ago to 3 days ahead, a third claimed.
    (
        "INSERT INTO tasks (kind, priority, status, title, patient_id, department_id, assignee_id, source_type,"
        " source_id, due_at, created_at)"
        " SELECT (ARRAY['handoff','abnormal_answer','complaint','callback','loss_to_follow_up'])[1 + i % 5],"
        " (ARRAY['urgent','high','normal','low'])[1 + (i / 5) % 4],"
        " CASE WHEN i % 3 = 0 THEN 'claimed' ELSE 'open' END, 'Task ' || i, p, (p % :d) + 1,"
        " CASE WHEN i % 3 = 0 THEN 1 ELSE NULL END,"
        " CASE WHEN i % 5 = 0 THEN 'conversation' ELSE 'response' END,"
        " CASE WHEN i % 5 = 0 THEN p * 2 - 1 ELSE i END,"
        " now() - interval '2 days' + ((i * 7919) % 432000) * interval '1 second', now() - interval '3 days'"
        " FROM (SELECT i, 1 + (i * 31) % :p AS p FROM generate_series(1, :t) i) s"
    ),
]


def seed(url: str) -> None:
    engine = sa.create_engine(url)
    params: dict[str, object] = {"d": DEPARTMENTS, "p": PATIENTS, "m": MESSAGES, "h": HEAVY_MESSAGES, "t": TASKS}
    params.update(encrypted_values())  # names, diagnoses and texts are encrypted at rest
    with engine.begin() as conn:
        for n, statement in enumerate(SEED):
            if n == 2:
                add_staff(conn)  # the claimed tasks' assignee must exist first
            conn.execute(sa.text(statement), params)
        identify_first_patient(conn)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


def identify_first_patient(conn: sa.Connection) -> None:
    """Patient 1's page is opened: give it identifiers encrypted by the app's own column types."""
    from backend.models import Patient

    phone = "+8613800000001"
    conn.execute(
        sa.update(Patient)
        .where(Patient.id == 1)
        .values(mrn="MRN000001", mrn_bidx="bench-mrn-1", phone=phone, phone_bidx=Patient.phone_index(phone))
    )


def add_staff(conn: sa.Connection) -> None:
    """The agent (id 1, the claimed tasks' assignee) and a Cardiology nurse, with real password hashes."""
    from backend.models import Department, Role, StaffUser
    from backend.security.auth import hash_password

    for username, role in (("agent", Role.SERVICE_AGENT), ("nurse", Role.NURSE)):
        conn.execute(
            sa.insert(StaffUser).values(
                username=username,
                display_name=username.title(),
                roles={role},
                password_hash=hash_password(PASSWORD),
                language="en",
                active=True,
            )
        )
    nurse = conn.scalar(sa.select(StaffUser.id).where(StaffUser.username == "nurse"))
    cardio = conn.scalar(sa.select(Department.id).order_by(Department.id).limit(1))
    conn.execute(sa.text("INSERT INTO staff_departments VALUES (:s, :d)"), {"s": nurse, "d": cardio})


@contextmanager
def running(url: str) -> Iterator[tuple[str, int]]:
    """The server on the bench database: yields its base URL and process id."""
    with server(fixed_env(url)) as (port, pid):
        yield f"http://{HOST}:{port}", pid


def sign_in(base: str, username: str) -> httpx.Client:
    import re

    client = httpx.Client(base_url=base, timeout=30)
    page = client.get("/staff/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    done = client.post(
        "/staff/login",
        data={"username": username, "password": PASSWORD, "totp_code": "", "csrf_token": token.group(1)},
    )
    assert done.status_code in (200, 303) and "cl_session" in client.cookies, done.status_code
    return client


def cpu_ms(pid: int) -> float:
    """The process's CPU time so far (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def median_ms(client: httpx.Client, path: str, pid: int) -> tuple[float, float, float]:
    """Median and worst of RUNS requests after WARMUP, in ms (each must answer 200), and the server's
    CPU per measured request: wall times grow when other work shares the machine, CPU much less."""
    times = []
    for n in range(WARMUP + RUNS):
        if n == WARMUP:
            cpu_before = cpu_ms(pid)
        started = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (path, response.status_code)
        if n >= WARMUP:
            times.append(elapsed)
    return statistics.median(times), max(times), (cpu_ms(pid) - cpu_before) / RUNS


def push_times(url: str, client: httpx.Client) -> list[float]:
    """Milliseconds from each committed new task to the nurse's stream's next counts event."""
    from backend.app.db import session_scope
    from backend.models import Department, TaskKind, TaskPriority
    from backend.services.tasks import do_raise_task

    events: list[float] = []
    ready = threading.Event()
    stop = threading.Event()

    def listen() -> None:
        with client.stream("GET", "/staff/inbox/events", timeout=None) as stream:
            for line in stream.iter_lines():
                if line.startswith("event: counts"):
                    events.append(time.perf_counter())
                    ready.set()
                if stop.is_set():
                    return

    threading.Thread(target=listen, daemon=True).start()
    assert ready.wait(30), "no first counts event"
    with session_scope() as session:
        cardio = session.scalar(sa.select(Department.id).order_by(Department.id).limit(1))
    found = []
    for n in range(PUSHES):
        seen = len(events)
        with session_scope() as session:
            do_raise_task(
                session,
                kind=TaskKind.ABNORMAL_ANSWER,
                priority=TaskPriority.URGENT,
                title=f"Bench finding {n}",
                source=("response", 10_000_000 + n),
                patient_id=1,
                department_id=cardio,
            )
        committed = time.perf_counter()
        deadline = committed + 5
        while len(events) == seen and time.perf_counter() < deadline:
            time.sleep(0.002)
        if len(events) == seen:
            raise RuntimeError("the new task never reached the stream")
        found.append((events[seen] - committed) * 1000)
        time.sleep(0.7)  # land at a different point of the stream's poll
    stop.set()
    return found


def main() -> None:
    with migrated_database(fixed_env) as url:
        os.environ.update(fixed_env(url))
        started = time.perf_counter()
        seed(url)
        print(
            f"seeded {PATIENTS:,} patients, {PATIENTS * 2:,} conversations, {MESSAGES:,} messages and"
            f" {TASKS:,} open tasks in {time.perf_counter() - started:.1f} s"
        )
        with running(url) as (base, pid):
            agent, nurse = sign_in(base, "agent"), sign_in(base, "nurse")
            first = median_ms(agent, "/staff/inbox", pid)
            filtered = median_ms(
                agent, "/staff/inbox?queue=abnormal_answer&priority=high&department=3&sla=ok&ward=5", pid
            )
            nurse_first = median_ms(nurse, "/staff/inbox", pid)
            timeline = median_ms(agent, "/staff/patients/1", pid)
            pushes = push_times(url, nurse)
    push = statistics.median(pushes)
    for label, (median, worst, cpu) in (
        ("first inbox page (agent, all departments)", first),
        ("filtered page (queue, priority, department, SLA, ward)", filtered),
        ("first inbox page (nurse, one department)", nurse_first),
        (f"patient page with the timeline of {HEAVY_MESSAGES:,} messages", timeline),
    ):
        print(f"{label}: median {median:.1f} ms, worst {worst:.1f} ms, server CPU {cpu:.1f} ms per request")
    print(
        f"new finding -> open inbox stream: median {push:.0f} ms, worst {max(pushes):.0f} ms ({PUSHES} findings)"
    )
    report(
        {
            "first_page_ms": round(first[0], 1),
            "filtered_page_ms": round(filtered[0], 1),
            "timeline_ms": round(timeline[0], 1),
            "push_ms": round(push, 1),
            "push_worst_ms": round(max(pushes), 1),
            "nurse_first_page_ms": round(nurse_first[0], 1),
            "first_page_cpu_ms": round(first[2], 1),
            "filtered_page_cpu_ms": round(filtered[2], 1),
            "timeline_cpu_ms": round(timeline[2], 1),
            "tasks": TASKS,
            "messages": MESSAGES,
        }
    )


if __name__ == "__main__":
    main()
