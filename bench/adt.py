"""HL7 v2 ADT over MLLP at a large hospital's volume: throughput, ACK latency and backlog drain.

Run from the repository root (no arguments needed):

    PYTHONPATH=. python bench/adt.py

PostgreSQL on 127.0.0.1:5432 with `synchronous_commit` on (checked: the bench refuses otherwise, an ACK
must mean a durable commit). The database holds 100,000 patients (MRN and PID-3 identifier, encrypted,
with their blind indexes), 20,000 open inpatient visits with their PV1-19 numbers, 6 departments with 2
wards each (their codes are what PV1-3/PV1-10 send) and three follow-up plans, so every A03 plans its
follow-ups in the message's transaction. Seeding takes a minute or two, so the seeded database is kept
as a template (`careloop_bench_adt_tpl_<hash of the migrations and this seed>`) and each run works on a
copy of it (`CREATE DATABASE … TEMPLATE`), dropped at the end.

A real `careloop hl7-listen` process and real MLLP sockets; each sender connection sends one message,
waits for its ACK, then sends the next (original mode, as integration engines do). The mix per
connection: 50 % A08 (update of an open visit), 20 % A01 (admission; 1 in 10 of a new patient), 20 % A03
(discharge of an open visit, planned at once), and 10 % others (A02 transfer, A04 outpatient
registration, A31 person update, A11 cancel admission, A13 cancel discharge). Each connection carries
its own patients, so one patient's messages stay in order, as an engine routing by patient does.

- `adt_per_s`: 4 connections sending as fast as ACKs come back, for 30 s (after a warm-up).
- `ack_p99_ms`: an offered 50 messages/s (12.5 per connection, on a fixed schedule) for 30 s; the time
  from a message's scheduled send to its ACK, so waiting behind the previous message counts.
- `backlog_drain_s`: the listener is stopped for 60 s while messages keep arriving at 50/s and queue at
  the sender (which retries its connection every 0.2 s); from the moment the restarted listener accepts
  connections until every connection's queue is empty (the next message not yet due). Capped at 240 s
  (then null, with the messages still queued).

Also printed: statuses of the acknowledged messages checked against the database (every AA is a row
with status `applied`), follow-up tasks planned, and CPU per message of the listener and of PostgreSQL
(all of PostgreSQL's processes: other work on a shared machine shows up there). Ends with one JSON line.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: `bench` is then a package on the path

from bench.harness import (  # noqa: E402
    HOST,
    PG_HOST,
    PG_PORT,
    PG_USER,
    REPO_ROOT,
    CpuSample,
    fixed_env,
    free_port,
    percentile,
    pg_connect,
    report,
    stop,
)
from tests.backend.integration.hl7_peer import MllpPeer, adt  # noqa: E402

PATIENTS, OPEN_VISITS, CONNECTIONS = 100_000, 20_000, 4
PROCESSES = int(os.environ.get("BENCH_HL7_PROCESSES", "2"))  # listener processes (CARELOOP_HL7_PROCESSES)
SEED_VERSION = "1"  # bump when the seed changes: a new template is built
SATURATED_S, OFFERED_RATE, OFFERED_S, OUTAGE_S, DRAIN_LIMIT_S = 30.0, 50.0, 30.0, 60.0, 240.0
WARMUP = 60
DEPARTMENTS = ("CARD", "SURG", "MED", "ORTH", "NEUR", "PEDS")
DIAGNOSES = (
    "I21.0^Acute transmural myocardial infarction^I10",
    "I10^Essential hypertension^I10",
    "K35.8^Acute appendicitis^I10",
    "J18.9^Pneumonia^I10",
    "S72.0^Fracture of neck of femur^I10",
    "E11.9^Type 2 diabetes mellitus^I10",
)
MIX = (("A08", 50), ("A01", 20), ("A03", 20), ("A02", 4), ("A04", 3), ("A31", 1), ("A11", 1), ("A13", 1))


def mrn(index: int) -> str:
    return f"B{index:07d}"


def visit_owner(j: int) -> int:
    """The patient (1-based index) of seeded open visit j: spread over the patients, deterministic."""
    return (j * 5) % PATIENTS + 1


# --------------------------------------------------------------------------- the seeded template


def template_name() -> str:
    digest = hashlib.sha256(SEED_VERSION.encode())
    for path in sorted((REPO_ROOT / "backend" / "migrations").rglob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return f"careloop_bench_adt_tpl_{digest.hexdigest()[:12]}"


def url_of(name: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def seed(url: str) -> None:
    """The hospital before the feed starts, written through the models' tables (encryption included)."""
    os.environ.update(fixed_env(url))  # the cipher's keys, the same as the listener's
    import sqlalchemy as sa

    from backend.models import Department, EncounterIdentifier, Patient, PatientIdentifier, Ward
    from backend.models.followup import FollowUpPlan
    from backend.models.patients import Encounter

    now = datetime.now(UTC)
    rng = random.Random(7)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for code in DEPARTMENTS:
            department_id = conn.execute(
                sa.insert(Department).values(code=code, name=code, names={}).returning(Department.id)
            ).scalar_one()
            conn.execute(
                sa.insert(Ward),
                [{"department_id": department_id, "code": f"{code}W{w}", "name": f"{code} ward {w}"}
                 for w in (1, 2)],
            )  # fmt: skip
        plans = [
            ("discharges", "post_discharge", ["discharge"], [], [3, 15, 30]),
            ("hypertension", "hypertension_follow_up", ["discharge", "outpatient"], ["I10"], [7, 30]),
            ("cardiology", "post_discharge", ["discharge"], ["I21"], [1, 7]),
        ]
        conn.execute(
            sa.insert(FollowUpPlan),
            [
                {"name": n, "active": True, "questionnaire_id": q, "encounter_kinds": k, "department_ids": [],
                 "ward_ids": [], "diagnosis_prefixes": d, "procedure_codes": [], "anchor": "discharge",
                 "offsets_days": o, "send_hour": 10, "channels": ["webchat", "sms"], "sample_ratio": 1.0,
                 "resend_after_hours": 48, "attempts_per_channel": 2, "excluded_flags": ["deceased"],
                 "created_at": now}
                for n, q, k, d, o in plans
            ],
        )  # fmt: skip
    started = time.perf_counter()
    batch = 5000
    for first in range(1, PATIENTS + 1, batch):
        indexes = range(first, min(first + batch, PATIENTS + 1))
        with engine.begin() as conn:
            ids = conn.execute(
                sa.insert(Patient).returning(Patient.id, sort_by_parameter_order=True),
                [
                    {"mrn": mrn(i), "mrn_bidx": Patient.code_index("mrn", mrn(i)), "name": f"Patient {i}",
                     "sex": "female" if i % 2 else "male", "language": "zh-CN", "timezone": "Asia/Shanghai",
                     "deceased": False, "dispute": False, "do_not_disturb": False, "invalid_contact": False,
                     "frequent_visitor": False, "created_at": now, "updated_at": now}
                    for i in indexes
                ],
            ).scalars().all()  # fmt: skip
            conn.execute(
                sa.insert(PatientIdentifier),
                [
                    {"patient_id": pid, "authority": "HOSP", "type_code": "MR", "value": mrn(i),
                     "value_bidx": PatientIdentifier.index(mrn(i)), "created_at": now}
                    for pid, i in zip(ids, indexes, strict=True)
                ],
            )  # fmt: skip
    print(f"  seeded {PATIENTS:,} patients in {time.perf_counter() - started:.1f} s", flush=True)
    with engine.begin() as conn:
        departments = dict(conn.execute(sa.select(Department.code, Department.id)).all())
        wards = dict(conn.execute(sa.select(Ward.code, Ward.id)).all())
        patient_ids = dict(
            zip(
                range(1, PATIENTS + 1),
                conn.execute(sa.select(Patient.id).order_by(Patient.id)).scalars(),
                strict=True,
            )
        )
        for first in range(0, OPEN_VISITS, batch):
            rows = []
            for j in range(first, min(first + batch, OPEN_VISITS)):
                code = DEPARTMENTS[j % len(DEPARTMENTS)]
                rows.append((j, code, f"{code}W{1 + j % 2}"))
            encounter_ids = conn.execute(
                sa.insert(Encounter).returning(Encounter.id, sort_by_parameter_order=True),
                [
                    {"patient_id": patient_ids[visit_owner(j)], "kind": "inpatient", "department_id": departments[d],
                     "ward_id": wards[w], "started_at": now - timedelta(hours=1 + rng.randrange(24 * 10)),
                     "diagnoses": [], "primary_diagnosis": None}
                    for j, d, w in rows
                ],
            ).scalars().all()  # fmt: skip
            conn.execute(
                sa.insert(EncounterIdentifier),
                [
                    {"encounter_id": e, "authority": "HOSP", "visit_number": f"S{j:06d}", "placeholder": False,
                     "mapping_source": "HOSP", "department_code": d, "ward_code": w, "patient_class": "I",
                     "last_event": "admit", "updated_at": now}
                    for e, (j, d, w) in zip(encounter_ids, rows, strict=True)
                ],
            )  # fmt: skip
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


def ensure_template() -> str:
    """The seeded template database, built once (under another name, renamed when complete)."""
    name = template_name()
    with pg_connect() as conn:
        existing = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'careloop\\_bench\\_adt\\_tpl\\_%'"
        )]  # fmt: skip
        for old in existing:
            if old != name:  # a template of older migrations or an older seed
                conn.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
        if name in existing:
            print(f"template {name}: reused", flush=True)
            return name
        building = f"careloop_bench_adt_build_{os.getpid()}"
        conn.execute(f'CREATE DATABASE "{building}"')
    print(f"template {name}: building (migrate, seed)", flush=True)
    try:
        subprocess.run(
            [sys.executable, "-m", "backend.app.cli", "migrate"],
            cwd=REPO_ROOT, env=fixed_env(url_of(building)), check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        seed(url_of(building))
        with pg_connect() as conn:
            conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    except BaseException:
        with pg_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
        raise
    return name


@contextlib.contextmanager
def copy_of(template: str) -> Iterator[str]:
    name = f"careloop_bench_adt_{os.getpid()}"
    with pg_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield name
    finally:
        with pg_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def durable_settings(name: str) -> dict[str, str]:
    with pg_connect(name) as conn:
        rows = conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', 'wal_sync_method',"
            " 'commit_delay', 'max_connections', 'shared_buffers')"
        ).fetchall()
    return {str(n): str(s) for n, s in rows}


# --------------------------------------------------------------------------- the hospital's message stream


@dataclass
class Stream:
    """One connection's messages: its own patients and visits, the ADT mix, kept consistent."""

    lane: int
    rng: random.Random
    open_visits: list[tuple[str, int, str]] = field(default_factory=list)  # (visit, patient, department)
    admitted: list[tuple[str, int, str]] = field(default_factory=list)
    discharged: list[tuple[str, int, str]] = field(default_factory=list)
    counter: int = 0
    new_patients: int = 0

    @classmethod
    def make(cls, lane: int) -> Stream:
        stream = cls(lane, random.Random(1000 + lane))
        stream.open_visits = [
            (f"S{j:06d}", visit_owner(j), DEPARTMENTS[j % len(DEPARTMENTS)])
            for j in range(lane, OPEN_VISITS, CONNECTIONS)
        ]
        return stream

    def _patient(self) -> int:
        return self.rng.randrange(PATIENTS // CONNECTIONS) * CONNECTIONS + self.lane + 1

    def next(self) -> tuple[str, str, bytes]:
        """(event, control id, message bytes)."""
        self.counter += 1
        rng = self.rng
        event = rng.choices([e for e, _ in MIX], [w for _, w in MIX])[0]
        if event in ("A08", "A03", "A02") and len(self.open_visits) < 100:
            event = "A01"
        if event == "A11" and not self.admitted:
            event = "A01"
        if event == "A13" and not self.discharged:
            event = "A03"
        control = f"L{self.lane}-{os.getpid()}-{self.counter}"
        now = datetime.now(UTC).astimezone().strftime("%Y%m%d%H%M%S")
        kwargs: dict[str, object] = {"sent": now, "recorded": now}
        if event in ("A01", "A04"):
            if rng.random() < 0.1:
                self.new_patients += 1
                patient = -(self.lane + 1) * 10_000_000 - self.new_patients
            else:
                patient = self._patient()
            department = rng.choice(DEPARTMENTS)
            visit = (f"N{self.lane}-{os.getpid()}-{self.counter}", patient, department)
            if event == "A01":
                self.open_visits.append(visit)
                self.admitted.append(visit)
            kwargs.update(admit=now, patient_class="I" if event == "A01" else "O")
        elif event == "A11":
            visit = self.admitted.pop()
            if visit in self.open_visits:
                self.open_visits.remove(visit)
            kwargs.update(patient_class="I")
        elif event == "A13":
            visit = self.discharged.pop()
            self.open_visits.append(visit)
            kwargs.update(patient_class="I", discharge="")
        elif event == "A31":
            visit = ("", self._patient(), rng.choice(DEPARTMENTS))
        else:
            index = rng.randrange(len(self.open_visits))
            visit = self.open_visits[index]
            if event == "A03":
                self.open_visits[index] = self.open_visits[-1]
                self.open_visits.pop()
                self.discharged.append(visit)
                if visit in self.admitted:
                    self.admitted.remove(visit)
                kwargs.update(discharge=now, disposition="01")
            if event == "A02":
                visit = (visit[0], visit[1], rng.choice(DEPARTMENTS))
            kwargs.update(patient_class="I", admit="")
        number, patient, department = visit
        patient_mrn = mrn(patient) if patient > 0 else f"NEW{-patient}"
        text = adt(
            event,
            control,
            mrn=patient_mrn,
            name=f"Patient^{abs(patient)}",
            visit=number or None,
            service=department,
            location=f"{department}W{1 + rng.randrange(2)}^{rng.randrange(1, 40)}^{rng.randrange(1, 4)}",
            doctor=f"D{rng.randrange(1, 60):03d}^Doctor^{rng.randrange(1, 60)}",
            diagnoses=(rng.choice(DIAGNOSES),),
            **kwargs,  # type: ignore[arg-type]
        )
        return event, control, text.encode("utf-8")


# --------------------------------------------------------------------------- the listener


@dataclass
class Listener:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path


def start_listener(url: str, port: int, log: Path) -> Listener:
    env = {
        **fixed_env(url),
        "CARELOOP_HL7_PROCESSES": str(PROCESSES),
        "CARELOOP_HL7_WORKERS": str(CONNECTIONS),
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.app.cli", "hl7-listen", "--host", HOST, "--port", str(port)],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"hl7-listen exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return Listener(proc, port, log)
        time.sleep(0.1)
    stop(proc)
    raise RuntimeError("hl7-listen did not accept connections within 60 s")


def log_problems(log: Path) -> int:
    lines = log.read_text(errors="replace").splitlines()
    problems = [i for i, line in enumerate(lines) if " ERROR " in line or line.startswith("Traceback")]
    if problems:
        print(f"  listener log has {len(problems)} errors; the first:\n    "
              + "\n    ".join(lines[problems[0] : problems[0] + 30]), flush=True)  # fmt: skip
    return len(problems)


# --------------------------------------------------------------------------- senders


@dataclass
class Tally:
    acks: dict[str, int] = field(default_factory=dict)
    accepted: set[str] = field(default_factory=set)  # control ids answered AA
    latencies: list[int] = field(default_factory=list)  # ns
    sent: int = 0
    reconnects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, control: str, code: str, latency_ns: int | None) -> None:
        with self.lock:
            self.sent += 1
            self.acks[code] = self.acks.get(code, 0) + 1
            if code == "AA":
                self.accepted.add(control)
            if latency_ns is not None:
                self.latencies.append(latency_ns)

    def merge(self, other: Tally) -> None:
        for code, n in other.acks.items():
            self.acks[code] = self.acks.get(code, 0) + n
        self.accepted |= other.accepted


def _connect(port: int, tally: Tally, give_up: float) -> MllpPeer:
    while True:
        try:
            return MllpPeer(HOST, port, timeout=30)
        except OSError:
            if time.monotonic() > give_up:
                raise
            with tally.lock:
                tally.reconnects += 1
            time.sleep(0.2)


def _deliver(peer: MllpPeer | None, port: int, control: str, payload: bytes, tally: Tally,
             give_up: float) -> tuple[MllpPeer, str]:  # fmt: skip
    """Send until an ACK comes back (the listener may be down: reconnect and resend, as engines do)."""
    while True:
        if peer is None:
            peer = _connect(port, tally, give_up)
        try:
            return peer, peer.send(payload).code
        except OSError:
            peer.close()
            peer = None


def saturate(streams: list[Stream], port: int, seconds: float, tally: Tally) -> float:
    end = time.monotonic() + seconds
    started = time.monotonic()

    def lane(stream: Stream) -> None:
        peer: MllpPeer | None = None
        while time.monotonic() < end:
            _event, control, payload = stream.next()
            sent = time.perf_counter_ns()
            peer, code = _deliver(peer, port, control, payload, tally, end + 60)
            tally.record(control, code, time.perf_counter_ns() - sent)
        if peer is not None:
            peer.close()

    threads = [threading.Thread(target=lane, args=(s,)) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started


def scheduled(streams: list[Stream], port: int, seconds: float, tally: Tally,
              back: threading.Event | None = None, drained: list[float] | None = None,
              left: list[int] | None = None) -> None:  # fmt: skip
    """Each connection sends on a fixed schedule (rate / connections); latency from the scheduled time.
    With `back`: runs until, after `back` is set, the connection's queue is empty (the time recorded in
    `drained`), or the cap is reached (what was still queued recorded in `left`)."""
    interval = len(streams) / OFFERED_RATE
    left = left if left is not None else [0] * len(streams)
    start = time.monotonic()
    give_up = start + seconds + DRAIN_LIMIT_S + 60

    def lane(i: int, stream: Stream) -> None:
        peer: MllpPeer | None = None
        k = 0
        while True:
            due = start + (k + i / len(streams)) * interval
            now = time.monotonic()
            if back is not None and drained is not None:
                if back.is_set() and due > now:
                    drained[i] = now  # the queue is empty: the backlog is drained
                    break
                if back.is_set() and now - start > seconds + DRAIN_LIMIT_S:
                    left[i] = int((now - due) / interval) + 1  # due and not yet sent
                    break
            elif due >= start + seconds:
                break
            if due > now:
                time.sleep(due - now)
            _event, control, payload = stream.next()
            peer, code = _deliver(peer, port, control, payload, tally, give_up)
            tally.record(control, code, int((time.monotonic() - due) * 1e9))
            k += 1
        if peer is not None:
            peer.close()

    threads = [threading.Thread(target=lane, args=(i, s)) for i, s in enumerate(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# --------------------------------------------------------------------------- the run


def check_database(name: str, accepted: set[str]) -> dict[str, int]:
    with pg_connect(name) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM hl7_messages GROUP BY status").fetchall())
        applied = {r[0] for r in conn.execute("SELECT control_id FROM hl7_messages WHERE status = 'applied'")}
        tasks = conn.execute("SELECT count(*) FROM outreach_tasks").fetchone()
    missing = len(accepted - applied)
    return {**{str(k): int(v) for k, v in statuses.items()}, "aa_without_row": missing,
            "outreach_tasks": int(tasks[0] if tasks else 0)}  # fmt: skip


def main() -> None:
    settings = durable_settings("postgres")
    print(f"PostgreSQL: {settings}", flush=True)
    if (
        settings.get("synchronous_commit") not in {"on", "remote_write", "remote_apply"}
        or settings.get("fsync") != "on"
    ):
        sys.exit("refused: synchronous_commit and fsync must be on (an ACK must mean a durable commit)")
    template = ensure_template()
    figures: dict[str, object] = {}
    with copy_of(template) as name, tempfile.TemporaryDirectory(prefix="careloop-adt-") as tmp:
        url = url_of(name)
        if durable_settings(name).get("synchronous_commit") != settings["synchronous_commit"]:
            sys.exit("refused: the bench database overrides synchronous_commit")
        log = Path(tmp) / "listener.log"
        port = free_port()
        streams = [Stream.make(lane) for lane in range(CONNECTIONS)]
        total = Tally()
        listener = start_listener(url, port, log)
        try:
            warm = Tally()
            for stream in streams:  # a warm-up: code mappings seen, caches filled, connections pooled
                with MllpPeer(HOST, port) as peer:
                    for _ in range(WARMUP // CONNECTIONS):
                        _e, control, payload = stream.next()
                        warm.record(control, peer.send(payload).code, None)
            total.merge(warm)
            print(f"warm-up: {warm.acks}", flush=True)

            sat = Tally()
            before = CpuSample.take(listener.proc.pid)
            seconds = saturate(streams, port, SATURATED_S, sat)
            after = CpuSample.take(listener.proc.pid)
            total.merge(sat)
            rate = sat.sent / seconds
            lat = sorted(sat.latencies)
            per_msg = {
                k: round(1000 * v / max(1, sat.sent), 2)
                for k, v in (
                    ("server", after.server - before.server),
                    ("postgres", after.postgres - before.postgres),
                )
            }
            busy = round(100 * (after.machine_busy - before.machine_busy) / seconds)
            print(f"saturated, {CONNECTIONS} connections: {sat.sent} messages in {seconds:.1f} s = {rate:.1f}/s; "
                  f"ACK p50 {percentile(lat, 50):.1f} ms, p99 {percentile(lat, 99):.1f} ms; {sat.acks}; "
                  f"CPU per message: listener {per_msg['server']} ms, PostgreSQL {per_msg['postgres']} ms; "
                  f"machine busy {busy} % of a core", flush=True)  # fmt: skip
            figures.update(adt_per_s=round(rate, 1), cpu_ms_per_message=per_msg, machine_busy_pct=busy)

            offered = Tally()
            scheduled(streams, port, OFFERED_S, offered)
            total.merge(offered)
            lat = sorted(offered.latencies)
            print(f"offered {OFFERED_RATE:.0f}/s: {offered.sent} messages; ACK p50 {percentile(lat, 50):.1f} ms, "
                  f"p99 {percentile(lat, 99):.1f} ms, max {lat[-1] / 1e6 if lat else 0:.1f} ms; {offered.acks}",
                  flush=True)  # fmt: skip
            figures.update(ack_p50_ms=round(percentile(lat, 50), 1), ack_p99_ms=round(percentile(lat, 99), 1))
        finally:
            stop(listener.proc)

        outage = Tally()
        back = threading.Event()
        drained = [0.0] * CONNECTIONS
        queued_left = [0] * CONNECTIONS
        senders = threading.Thread(
            target=scheduled, args=(streams, port, OUTAGE_S, outage, back, drained, queued_left)
        )
        senders.start()
        time.sleep(OUTAGE_S)
        queued = int(OUTAGE_S * OFFERED_RATE)
        restart = time.monotonic()
        listener = start_listener(url, port, log)
        accepting = time.monotonic()
        back.set()
        try:
            senders.join()
            ended = time.monotonic()
        finally:
            stop(listener.proc)
        total.merge(outage)
        drain = max(drained) - accepting if all(drained) else None
        still_queued = sum(queued_left)
        drain_rate = outage.sent / (ended - accepting)
        print(f"outage {OUTAGE_S:.0f} s (about {queued} queued): listener accepting after {accepting - restart:.1f} s; "
              f"backlog drained in {f'{drain:.1f} s' if drain is not None else f'more than {DRAIN_LIMIT_S:.0f} s'}; "
              f"{outage.sent} messages, {outage.acks}", flush=True)  # fmt: skip
        print(f"  after the outage: {drain_rate:.1f} messages/s while draining; still queued at the cap: {still_queued}",
              flush=True)  # fmt: skip
        figures.update(backlog_drain_s=round(drain, 1) if drain is not None else None, backlog_messages=queued,
                       drain_per_s=round(drain_rate, 1), queued_at_cap=still_queued)  # fmt: skip
        checked = check_database(name, total.accepted)
        print(f"database: {checked}; ACKs over the run: {total.acks}", flush=True)
        figures.update(aa_without_row=checked["aa_without_row"], outreach_tasks=checked["outreach_tasks"],
                       listener_errors=log_problems(log), synchronous_commit=settings["synchronous_commit"])  # fmt: skip
    report(figures)


if __name__ == "__main__":
    main()
