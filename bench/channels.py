"""Messaging channels throughput on PostgreSQL + Redis: Twilio SMS webhooks in, outbox SMS out.

Run from the repository root (no arguments needed):

    PYTHONPATH=. python bench/channels.py

Set-up: a fresh PostgreSQL database (``careloop_bench_<random>`` on 127.0.0.1:5432 as ``postgres``, dropped
at the end), ``careloop migrate`` in a subprocess, then ``--patients`` patients seeded through the app's own
models (so phone numbers are encrypted and blind-indexed exactly as in production) with known phone numbers,
all in Asia/Shanghai. Every process gets REDIS_URL (127.0.0.1:6379) and a unique RQ queue name
(CARELOOP_JOB_QUEUE=careloop-bench-<random>); at the end the database is dropped, every process started is
stopped, and only the Redis keys of that queue (its jobs, registries and workers) are deleted.
A local fake Twilio (``tests/channels/fake_twilio.py``) runs in its own subprocess, so its CPU does not
compete with the load client's GIL and is accounted separately; CARELOOP_TWILIO_API_BASE points at it.

Inbound (``inbound_per_s``)
---------------------------
``careloop serve --workers 2`` with the Twilio settings. ``--concurrency`` keep-alive connections (the
minimal asyncio client of bench/turns.py) POST ``/hooks/twilio/messages`` form bodies built like
``fake_twilio.incoming_sms``: a unique MessageSid each, From = a seeded patient's phone (round robin), an
ordinary text (not a keyword), signed with ``X-Twilio-Signature`` over CARELOOP_PUBLIC_URL + path + params.
Each request verifies the signature, stores the message once, commits and queues ``run_turn`` on RQ. No RQ
worker runs in this phase, so the turn jobs only queue up (their number is checked, then they are dropped).
After a warm-up, load runs for ``--duration`` seconds; only 200 answers count; p50/p99 are of those.
Then: a few accepted webhooks are sent again (must answer 200 and not be stored twice) and a few forged
ones (wrong token, no signature, body changed after signing: must answer 403 and not be stored); finally
the database must hold every accepted MessageSid exactly once and nothing else.

Outbound (``outbound_per_s``)
-----------------------------
The API server is stopped. ``--messages`` outreach SMS (one per patient, a unique body each) are queued
with ``backend.outbox.enqueue.do_enqueue_batch`` (not timed). Quiet hours are OFF for the bench
(CARELOOP_QUIET_HOURS_START = END = 0) and CARELOOP_MAX_MESSAGES_PER_DAY is high, so every item may go
now. ``--workers`` RQ workers (``careloop worker``) are started and registered; then the clock starts and
``backend.outbox.sender.drain_outbox`` is called until it finds nothing more to queue (with REDIS_URL it
queues ``send_items`` jobs of 100 ids), and the outbox is polled every 0.1 s until every item is ``sent``.
outbound_per_s = messages / (last item sent - first drain). The fake must have accepted exactly that many
messages, each body once.

CPU use per process group (server, RQ workers, fake Twilio), PostgreSQL, Redis and this client is reported
for both measured phases. The output ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_BENCH_DIR = Path(__file__).resolve().parent
# Run as a script, this file's folder comes first on the import path, and the file is named like the
# repository's `channels` package: drop the folder so `import channels` finds the package.
sys.path[:] = [str(_BENCH_DIR.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _BENCH_DIR]

from bench.harness import (  # noqa: E402
    REPO_ROOT,
    Connection,
    HttpError,
    base_env,
    cli,
    percentile,
    postgres_database,
    report,
    server,
    stop,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
HOOK_PATH = "/hooks/twilio/messages"
SMS_FROM = "+15005550006"
INBOUND_TEXT = "Thank you, I am feeling better today"
TARGET_PER_S = 500
_TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- processes and CPU


def _proc_cpu(pid: int) -> tuple[str, set[int], float]:
    """(name, {parent, process group}, CPU seconds incl. reaped children). RQ forks a short-lived work
    horse per job in a session of its own: it is matched by its parent, and its CPU moves to the parent's
    children time once reaped."""
    text = Path(f"/proc/{pid}/stat").read_text()
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, {int(fields[1]), int(fields[2])}, sum(int(x) for x in fields[11:15]) / _TICKS


@dataclass
class CpuMeter:
    """CPU seconds used per labelled process group, PostgreSQL, Redis, this process and the machine."""

    groups: dict[str, set[int]] = field(default_factory=dict)

    def take(self) -> dict[str, float]:
        used = dict.fromkeys([*self.groups, "postgres", "redis", "bench_client"], 0.0)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                name, owners, cpu = _proc_cpu(int(entry.name))
                label = next((k for k, pgids in self.groups.items() if owners & pgids), None)
                if label is None and name in ("postgres", "redis-server"):
                    label = "postgres" if name == "postgres" else "redis"
                if label is not None:
                    used[label] += cpu
        used["bench_client"] = time.process_time()
        ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        used["machine"] = (sum(ticks) - ticks[3] - ticks[4]) / _TICKS  # all but idle and iowait
        return used

    @staticmethod
    def percent(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, int]:
        """Percent of one core per consumer over the window; `other` is the rest of the machine."""
        pct = {k: after[k] - before[k] for k in before if k != "machine"}
        pct["other"] = max(0.0, after["machine"] - before["machine"] - sum(pct.values()))
        return {k: round(100 * v / seconds) for k, v in pct.items()}


def _spawn(args: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, cwd=REPO_ROOT, env=env, start_new_session=True, **kwargs)


def _log_problems(name: str, log: Any) -> int:
    log.seek(0)
    lines = log.read().decode("utf-8", "replace").splitlines()
    problems = [i for i, line in enumerate(lines) if "ERROR" in line or line.startswith("Traceback")]
    if problems:
        first = lines[problems[0] : problems[0] + 30]
        print(f"  {name} log has {len(problems)} errors/tracebacks; the first:\n    " + "\n    ".join(first))
    return len(problems)


@contextlib.contextmanager
def fake_twilio(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The fake Twilio in a subprocess (this script with --serve-fake); yields (process, base URL)."""
    proc = _spawn(
        [sys.executable, str(Path(__file__).resolve()), "--serve-fake"],
        env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        base_url = json.loads(proc.stdout.readline())["base_url"]
        yield proc, base_url
    finally:
        if proc.stdin:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        stop(proc)


def _fake_stats(proc: subprocess.Popen[bytes]) -> dict[str, int]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"stats\n")
    proc.stdin.flush()
    return dict(json.loads(proc.stdout.readline()))


def serve_fake() -> int:
    """Subprocess entry point: run FakeTwilio; answer `stats` lines on stdin; exit on EOF."""
    from tests.channels.fake_twilio import FakeTwilio

    with FakeTwilio() as fake:
        print(json.dumps({"base_url": fake.base_url}), flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                accepted = fake.messages
                bodies = Counter(r.params.get("Body", "") for r in accepted)
                stats = {
                    "requests": len(fake.requests),
                    "accepted": len(accepted),
                    "rejected": len(fake.requests) - len(accepted),
                    "distinct_bodies": len(bodies),
                    "duplicates": sum(n - 1 for n in bodies.values()),
                }
                print(json.dumps(stats), flush=True)
    return 0


@contextlib.contextmanager
def rq_workers(env: dict[str, str], count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    logs = [tempfile.TemporaryFile() for _ in range(count)]  # noqa: SIM115  (closed below)
    procs = [
        _spawn([sys.executable, "-m", "backend.app.cli", "worker"], env, stdout=log, stderr=subprocess.STDOUT)
        for log in logs
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            stop(proc)
        for i, log in enumerate(logs):
            _log_problems(f"worker {i}", log)
            log.close()


# --------------------------------------------------------------------------- Redis


def _queue(kind: str = "default") -> Any:
    from redis import Redis
    from rq import Queue

    from backend.app.queues import JobQueue
    from backend.app.settings import get_settings

    settings = get_settings()
    assert settings.redis_url
    return Queue(settings.queue_name(JobQueue(kind)), connection=Redis.from_url(settings.redis_url))


def _wait_workers(queue: Any, count: int, procs: list[subprocess.Popen[bytes]]) -> list[str]:
    from rq import Worker

    for _ in range(300):
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("an RQ worker exited at start-up (see its log above)")
        names = [w.name for w in Worker.all(queue=queue)]
        if len(names) >= count:
            return names
        time.sleep(0.1)
    raise RuntimeError(f"{count} RQ workers did not register within 30 s")


def flush_queue(queue: Any, worker_names: list[str]) -> int:
    """Delete the keys of our queues only (the default `queue` and its -system, -sends and -turns
    siblings): the queues, their registries, their jobs (and their results and executions) and our
    workers. Other queues on the same Redis are left alone."""
    from rq import Queue

    conn = queue.connection
    siblings = [queue] + [
        Queue(f"{queue.name}-{kind}", connection=conn) for kind in ("system", "sends", "turns")
    ]
    ids: set[bytes] = set()
    for one in siblings:
        ids.update(job_id.encode() for job_id in one.get_job_ids())
        for registry in (
            one.started_job_registry,
            one.finished_job_registry,
            one.failed_job_registry,
            one.deferred_job_registry,
            one.scheduled_job_registry,
            one.canceled_job_registry,
        ):
            ids.update(job_id.encode() for job_id in registry.get_job_ids())
    ids.update(name.encode() for name in worker_names)
    ours = queue.name.encode()
    doomed = [
        key
        for key in conn.scan_iter(match="rq:*", count=1000)
        if ours in key or any(part in ids for part in key.split(b":"))
    ]
    for start in range(0, len(doomed), 1000):
        conn.delete(*doomed[start : start + 1000])
    conn.srem("rq:queues", *(one.key for one in siblings))
    for name in worker_names:
        conn.srem("rq:workers", f"rq:worker:{name}")
    return len(doomed)


# --------------------------------------------------------------------------- data


def _use_env(env: dict[str, str]) -> None:
    """Give this process the servers' settings (data key, database, queue) before importing the app."""
    for key in [k for k in os.environ if k.startswith("CARELOOP_")]:
        del os.environ[key]
    os.environ.update(
        {k: v for k, v in env.items() if k.startswith("CARELOOP_") or k in ("DATABASE_URL", "REDIS_URL")}
    )
    from backend.app.settings import get_settings

    get_settings.cache_clear()


def seed_patients(count: int) -> list[tuple[int, str]]:
    """`count` patients with known, valid mobile numbers and no exclusions; returns (id, phone)."""
    from backend.app.db import session_scope
    from backend.models import Patient

    made: list[tuple[int, str]] = []
    for start in range(0, count, 2000):
        with session_scope() as session:
            batch = [
                Patient(
                    mrn=f"BENCH{i:07d}",
                    name=f"Bench Patient {i}",
                    language="zh-CN",
                    timezone="Asia/Shanghai",
                    phone=f"+86139{i:08d}",
                )
                for i in range(start, min(count, start + 2000))
            ]
            session.add_all(batch)
            session.flush()
            made += [(p.id, str(p.phone)) for p in batch]
    return made


def stored_inbound_sids() -> tuple[int, set[str]]:
    """(inbound SMS rows, their distinct provider message ids) in the database."""
    import sqlalchemy as sa

    from backend.app.db import session_scope
    from backend.models import Direction, Message
    from bots.domain import Channel

    with session_scope() as session:
        sids = list(
            session.scalars(
                sa.select(Message.provider_message_id).where(
                    Message.direction == Direction.INBOUND, Message.channel == Channel.SMS
                )
            )
        )
    return len(sids), {s for s in sids if s}


def outbox_counts() -> dict[str, int]:
    import sqlalchemy as sa

    from backend.app.db import session_scope
    from backend.models import OutboxItem

    with session_scope() as session:
        rows = session.execute(sa.select(OutboxItem.status, sa.func.count()).group_by(OutboxItem.status))
        return {str(status.value): int(n) for status, n in rows}


# --------------------------------------------------------------------------- inbound


@dataclass
class Webhook:
    sid: str
    body: bytes
    signature: str


@dataclass
class InboundStats:
    latencies_ns: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    accepted: list[Webhook] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def make_webhook(url: str, token: str, phone: str, *, forge: str | None = None) -> Webhook:
    """A signed incoming-SMS webhook as Twilio sends it; `forge` spoils it in one of three ways."""
    from tests.channels.fake_twilio import incoming_sms, sign

    params = incoming_sms(sender=phone, body=INBOUND_TEXT, to=SMS_FROM)
    signature = sign(url, params, "not-" + token if forge == "wrong_token" else token)
    if forge == "no_signature":
        signature = ""
    if forge == "body_changed":
        params["Body"] = "STOP"
    return Webhook(params["MessageSid"], urllib.parse.urlencode(params).encode("ascii"), signature)


async def _post(conn: Connection, hook: Webhook) -> tuple[int, int]:
    headers = {"X-Twilio-Signature": hook.signature} if hook.signature else {}
    started = time.perf_counter_ns()
    status, _ = await conn.request("POST", HOOK_PATH, hook.body, extra_headers=headers)
    return status, time.perf_counter_ns() - started


async def inbound_load(
    port: int, hooks: Iterator[Webhook], concurrency: int, deadline: float, stats: InboundStats
) -> None:
    async def client() -> None:
        conn = Connection(port)
        try:
            while time.perf_counter() < deadline:
                hook = next(hooks)
                try:
                    status, elapsed = await _post(conn, hook)
                except (HttpError, OSError) as exc:
                    stats.errors.append(f"{type(exc).__name__}: {exc}")
                    if len(stats.errors) > 100:
                        raise
                    continue
                stats.statuses[status] += 1
                if status == 200:
                    stats.latencies_ns.append(elapsed)
                    stats.accepted.append(hook)
                elif len(stats.errors) < 100:
                    stats.errors.append(f"HTTP {status}")
        finally:
            await conn.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def replays_and_forgeries(port: int, again: list[Webhook], forged: list[Webhook]) -> tuple[list, list]:
    conn = Connection(port)
    try:
        replayed = [(await _post(conn, hook))[0] for hook in again]
        refused = [(await _post(conn, hook))[0] for hook in forged]
    finally:
        await conn.close()
    return replayed, refused


def bench_inbound(
    env: dict[str, str], args: argparse.Namespace, phones: list[str], cpu: CpuMeter
) -> dict[str, Any]:
    url = f"{env['CARELOOP_PUBLIC_URL']}{HOOK_PATH}"
    token = env["CARELOOP_TWILIO_AUTH_TOKEN"]
    hooks = (make_webhook(url, token, phone) for phone in itertools.cycle(phones))
    problems: list[str] = []
    print(
        f"\n== inbound: `serve --workers {args.server_workers}`, {args.concurrency} connections, "
        f"{args.duration:.0f} s measured after {args.warmup:.0f} s warm-up; no RQ worker running",
        flush=True,
    )
    with server(env, args.server_workers) as (port, pgid):
        cpu.groups["server"] = {pgid}
        warm = InboundStats()
        asyncio.run(inbound_load(port, hooks, args.concurrency, time.perf_counter() + args.warmup, warm))
        stats = InboundStats()
        before, started = cpu.take(), time.perf_counter()
        asyncio.run(inbound_load(port, hooks, args.concurrency, started + args.duration, stats))
        seconds = time.perf_counter() - started
        pct = CpuMeter.percent(before, cpu.take(), seconds)
        forged = [
            make_webhook(url, token, phones[i], forge=kind)
            for i, kind in enumerate(["wrong_token", "no_signature", "body_changed"] * 2)
        ]
        again = stats.accepted[:5] + warm.accepted[:1]
        replayed, refused = asyncio.run(replays_and_forgeries(port, again, forged))
        del cpu.groups["server"]
    lat = sorted(stats.latencies_ns)
    accepted = {h.sid for h in warm.accepted + stats.accepted}
    rows, stored = stored_inbound_sids()
    missing, extra = accepted - stored, stored - accepted
    turn_jobs = _queue("turns").count
    if rows != len(accepted) or missing or extra:
        problems.append(
            f"database holds {rows} inbound SMS ({len(stored)} distinct MessageSids) for "
            f"{len(accepted)} accepted webhooks: {len(missing)} missing, {len(extra)} unexpected"
        )
    if any(s != 200 for s in replayed):
        problems.append(f"duplicate deliveries answered {replayed} (expected 200)")
    if any(s != 403 for s in refused):
        problems.append(f"forged webhooks answered {refused} (expected 403)")
    if {h.sid for h in forged} & stored:
        problems.append("a forged webhook was stored")
    if turn_jobs != len(accepted):
        problems.append(f"{turn_jobs} turn jobs queued on RQ for {len(accepted)} new messages")
    errors = len(stats.errors) + len(warm.errors)
    result = {
        "inbound_per_s": round(len(lat) / seconds, 1),
        "inbound_p50_ms": round(percentile(lat, 50), 1),
        "inbound_p99_ms": round(percentile(lat, 99), 1),
        "inbound_accepted": len(lat),
        "inbound_errors": errors + len(problems),
        "inbound_cpu_pct": pct,
    }
    print(
        f"  {len(lat)} webhooks answered 200 in {seconds:.1f} s: {result['inbound_per_s']}/s, "
        f"p50 {result['inbound_p50_ms']} ms, p90 {percentile(lat, 90):.1f} ms, p99 {result['inbound_p99_ms']} ms, "
        f"max {lat[-1] / 1e6 if lat else float('nan'):.1f} ms; statuses {dict(stats.statuses)}",
        flush=True,
    )
    print(
        f"  stored exactly once: {rows} inbound SMS rows, {len(stored)} distinct MessageSids for "
        f"{len(accepted)} accepted (incl. {len(warm.accepted)} in warm-up); {turn_jobs} run_turn jobs queued",
        flush=True,
    )
    print(
        f"  {len(again)} duplicate deliveries answered {sorted(set(replayed))} and were not stored again: "
        f"{rows == len(accepted)}; {len(forged)} forged (wrong token, no signature, body changed after signing) "
        f"answered {sorted(set(refused))}",
        flush=True,
    )
    print(f"  CPU while measuring, % of one core (machine has {os.cpu_count()}): {pct}", flush=True)
    for line in (stats.errors + warm.errors)[:3] + problems:
        print(f"  PROBLEM: {line}", flush=True)
    return result


# --------------------------------------------------------------------------- outbound


def enqueue_outreach(patient_ids: list[int]) -> tuple[int, float]:
    from backend.app.db import session_scope
    from backend.models import Patient
    from backend.outbox.enqueue import do_enqueue_batch
    from bots.domain import Channel
    from bots.messages import Outbound, Text

    started = time.perf_counter()
    with session_scope() as session:
        queued = do_enqueue_batch(
            session,
            patient_ids=patient_ids,
            channel=Channel.SMS,
            outbound_for=lambda p: Outbound(
                (Text(f"CareLoop bench reminder #{p.id}: reply 1 if all is well"),)
            ),
            address_for=lambda p: Patient.phone_index(p.phone or ""),
            batch_id=f"bench-{secrets.token_hex(4)}",
        )
    return queued, time.perf_counter() - started


def bench_outbound(
    env: dict[str, str],
    args: argparse.Namespace,
    patient_ids: list[int],
    fake: subprocess.Popen[bytes],
    cpu: CpuMeter,
    worker_names: list[str],
) -> dict[str, Any]:
    from backend.outbox.sender import drain_outbox

    problems: list[str] = []
    print(
        f"\n== outbound: {args.messages} outreach SMS, {args.workers} RQ workers (`careloop worker`), "
        "fake Twilio in its own process; quiet hours DISABLED for the bench "
        "(CARELOOP_QUIET_HOURS_START=END=0), CARELOOP_MAX_MESSAGES_PER_DAY=1000",
        flush=True,
    )
    queue = _queue("turns")
    dropped = queue.count
    queue.empty()  # the inbound phase's run_turn jobs: not what this phase measures
    queued, enqueue_s = enqueue_outreach(patient_ids[: args.messages])
    print(
        f"  do_enqueue_batch: {queued} items in {enqueue_s:.1f} s (not timed; dropped {dropped} turn jobs "
        "left from the inbound phase)",
        flush=True,
    )
    fake_before = _fake_stats(fake)
    with rq_workers(env, args.workers) as procs:
        cpu.groups["workers"] = {p.pid for p in procs}
        worker_names += _wait_workers(queue, args.workers, procs)
        before, started = cpu.take(), time.perf_counter()
        drains, jobs_queued = 0, 0
        while True:
            drains += 1
            n = drain_outbox().get("queued", 0)
            jobs_queued += n
            if n == 0:
                break
        drained = time.perf_counter() - started
        counts: dict[str, int] = {}
        last_drain = time.perf_counter()
        while time.perf_counter() - started < args.timeout:
            counts = outbox_counts()
            if counts.get("sent", 0) >= queued or not (counts.get("pending", 0) + counts.get("sending", 0)):
                break
            if any(p.poll() is not None for p in procs):
                problems.append("an RQ worker died")
                break
            if time.perf_counter() - last_drain > 2:  # retries come due again (backoff >= 24 s)
                drain_outbox()
                last_drain = time.perf_counter()
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        pct = CpuMeter.percent(before, cpu.take(), seconds)
        del cpu.groups["workers"]
    fake_after = _fake_stats(fake)
    got = fake_after["accepted"] - fake_before["accepted"]
    sent = counts.get("sent", 0)
    if sent != queued:
        problems.append(f"{sent} of {queued} items sent within {args.timeout:.0f} s; outbox {counts}")
    if got != queued or fake_after["duplicates"]:
        problems.append(
            f"fake Twilio accepted {got} messages for {queued} items, "
            f"{fake_after['duplicates']} duplicate bodies, {fake_after['rejected']} rejected"
        )
    result = {
        "outbound_per_s": round(sent / seconds, 1),
        "outbound_sent": sent,
        "outbound_seconds": round(seconds, 2),
        "fake_received": got,
        "fake_duplicates": fake_after["duplicates"],
        "outbound_errors": len(problems),
        "outbound_cpu_pct": pct,
    }
    print(
        f"  drain_outbox x{drains} queued {jobs_queued} items as send_items jobs in {drained:.2f} s; "
        f"{sent} sent in {seconds:.1f} s: {result['outbound_per_s']}/s; outbox {counts}",
        flush=True,
    )
    print(
        f"  fake Twilio accepted {got} messages ({fake_after['distinct_bodies']} distinct bodies in all, "
        f"{fake_after['duplicates']} duplicates, {fake_after['rejected']} rejected)",
        flush=True,
    )
    print(f"  CPU while measuring, % of one core (machine has {os.cpu_count()}): {pct}", flush=True)
    for line in problems:
        print(f"  PROBLEM: {line}", flush=True)
    return result


# --------------------------------------------------------------------------- main


def _env(database_url: str, queue_name: str, fake_base: str) -> dict[str, str]:
    from tests.channels.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

    env = base_env()
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        CARELOOP_JOB_QUEUE=queue_name,
        CARELOOP_PUBLIC_URL="https://care.bench.invalid",  # what Twilio signs; not where the server listens
        CARELOOP_TWILIO_ACCOUNT_SID=DEFAULT_ACCOUNT_SID,
        CARELOOP_TWILIO_AUTH_TOKEN=DEFAULT_AUTH_TOKEN,
        CARELOOP_TWILIO_API_BASE=fake_base,
        CARELOOP_TWILIO_SMS_FROM=SMS_FROM,
        CARELOOP_QUIET_HOURS_START="0",
        CARELOOP_QUIET_HOURS_END="0",
        CARELOOP_MAX_MESSAGES_PER_DAY="1000",
    )
    return env


def run(args: argparse.Namespace) -> dict[str, Any]:
    queue_name = f"careloop-bench-{secrets.token_hex(4)}"
    cpu = CpuMeter()
    worker_names: list[str] = []
    with postgres_database() as (url, _name), fake_twilio(dict(base_env())) as (fake, fake_base):
        cpu.groups["fake_twilio"] = {fake.pid}
        env = _env(url, queue_name, fake_base)
        _use_env(env)
        queue = None
        try:
            cli(env, "migrate")
            started = time.perf_counter()
            patients = seed_patients(max(args.patients, args.messages))
            print(
                f"  seeded {len(patients)} patients through the models in {time.perf_counter() - started:.1f} s; "
                f"RQ queue {queue_name}",
                flush=True,
            )
            queue = _queue()
            inbound = bench_inbound(env, args, [phone for _, phone in patients], cpu)
            outbound = bench_outbound(env, args, [pid for pid, _ in patients], fake, cpu, worker_names)
        finally:
            from backend.app.db import dispose_engines

            dispose_engines()  # so the database can be dropped without force
            if queue is not None:
                print(
                    f"  deleted {flush_queue(queue, worker_names)} Redis keys of queue {queue_name}",
                    flush=True,
                )
    return inbound | outbound


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=20.0, help="measured inbound seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="inbound warm-up seconds")
    parser.add_argument("--concurrency", type=int, default=32, help="inbound connections")
    parser.add_argument("--server-workers", type=int, default=2, help="`careloop serve --workers`")
    parser.add_argument("--messages", type=int, default=20000, help="outreach SMS queued (N)")
    parser.add_argument("--patients", type=int, default=20000, help="patients seeded (at least N)")
    parser.add_argument("--workers", type=int, default=4, help="RQ workers for the outbox")
    parser.add_argument("--timeout", type=float, default=400.0, help="give up sending after this long")
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake:
        return serve_fake()
    if not (
        1 <= args.duration <= 120
        and 1 <= args.concurrency <= 256
        and 100 <= args.messages <= 50000
        and 1 <= args.workers <= 16
        and 1 <= args.server_workers <= 8
    ):
        parser.error(
            "limits: duration 1-120 s, concurrency 1-256, messages 100-50000, workers 1-16, "
            "server workers 1-8"
        )
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up (drop the database) on SIGTERM too

    started = time.perf_counter()
    figures = run(args)
    figures.update(
        N=args.messages,
        workers=args.workers,
        server_workers=args.server_workers,
        concurrency=args.concurrency,
        duration_s=args.duration,
        quiet_hours_disabled=True,
        errors=figures["inbound_errors"] + figures["outbound_errors"],
    )
    print(
        f"\ninbound : {figures['inbound_per_s']:7.1f} webhooks/s  p50 {figures['inbound_p50_ms']} ms  "
        f"p99 {figures['inbound_p99_ms']} ms  target >= {TARGET_PER_S}/s: "
        f"{'met' if figures['inbound_per_s'] >= TARGET_PER_S else 'NOT met'}"
    )
    print(
        f"outbound: {figures['outbound_per_s']:7.1f} messages/s  ({args.messages} via {args.workers} RQ workers)  "
        f"target >= {TARGET_PER_S}/s: {'met' if figures['outbound_per_s'] >= TARGET_PER_S else 'NOT met'}"
    )
    print(f"errors: {figures['errors']}; whole run {time.perf_counter() - started:.0f} s")
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
