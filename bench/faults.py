"""Outbound sends under faults: 2,000 SMS through RQ workers while a worker is SIGKILLed every 3 s and
the provider fails (503) or accepts-and-hangs (the client times out) for 20 s. Run twice: through the
generic SMS gateway (which has an idempotency `reference`) and through Twilio (which has none; a resend
after an ambiguous attempt is preceded by a Messages-list lookup).

Usage: ``python bench/faults.py`` (no arguments). Needs PostgreSQL and Redis on 127.0.0.1; creates and
drops its own database and deletes its own RQ queue's keys. The local fake (tests/channels/fake_twilio.py)
runs in its own process and counts what it accepted per recipient.

Figures per provider: `duplicated` (a recipient got its message more than once), `lost` (an item neither
sent nor failed, or marked sent without the provider having it), `stuck` (not final 60 s after the
faults end), `failed` (retries exhausted), `recovery_s` (faults end to every item final), `found` (resends
avoided by the lookup), `ambiguous` (attempts whose outcome was unknown). The last line is JSON.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.channels import (
    REDIS_URL,
    SMS_FROM,
    _queue,
    _use_env,
    enqueue_outreach,
    flush_queue,
    seed_patients,
)
from bench.harness import REPO_ROOT, base_env, cli, postgres_database, report
from tests.faults.processes import kill_tree

N = 2000
WORKERS = 3
KILL_EVERY_S = 3.0
OUTAGE_AT_S, OUTAGE_S = 12.0, 20.0
HANGS = 40  # requests accepted and then never answered during the outage (the rest answer 503)
SEND_TIMEOUT_S = 3
LATENCY_S = 0.25  # each send takes this long at the provider, so kills land mid-send
FAULTS_S = 40.0  # workers are killed for this long (the outage is inside it)
STUCK_AFTER_S = 60.0
GIVE_UP_S = 240.0


def serve_fake(latency: float) -> int:
    """Subprocess entry point: the fake provider; stdin commands `stats`, `outage`, `reset`."""
    from tests.channels.fake_twilio import FakeTwilio

    with FakeTwilio() as fake:
        fake.latency = latency
        print(json.dumps({"base_url": fake.base_url, "gateway_url": fake.gateway_url}), flush=True)
        for line in sys.stdin:
            command = line.split()
            if command == ["stats"]:
                to = Counter(r.params["To"] for r in fake.messages)
                to.update(r.json["to"] for r in fake.gateway_requests)
                print(
                    json.dumps(
                        {
                            "accepted": sum(to.values()),
                            "recipients": len(to),
                            "duplicated": sum(n - 1 for n in to.values()),
                            "per_recipient": Counter(to.values()),  # sends per recipient: how many
                            "reference_repeats": fake.gateway_repeats,
                            "lookups": sum(1 for r in fake.requests if r.json is None and "?" in r.path),
                            "requests": len(fake.requests),
                        }
                    ),
                    flush=True,
                )
            elif command == ["outage"]:
                fake.hang_next(times=HANGS, seconds=SEND_TIMEOUT_S * 3, accept=True)
                fake.fail_next(status=503, times=10**9)
                threading.Timer(OUTAGE_S, fake.clear_rules).start()
            elif command == ["reset"]:
                fake.reset()
    return 0


class Fake:
    def __init__(self, env: dict[str, str], latency: float = LATENCY_S) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-fake", str(latency)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        self.urls = json.loads(self.proc.stdout.readline())

    def ask(self, command: str) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline())) if command == "stats" else {}

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=15)


def _worker(env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "backend.app.cli", "worker"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> int:
    """SIGKILL: the worker and the job it runs (its work horse); SIGTERM: a warm shutdown. Returns
    how many work horses were killed with it."""
    horses = 0
    if proc.poll() is None:
        if sig == signal.SIGKILL:
            horses = kill_tree(proc.pid)
        else:
            os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return horses


def _counts() -> dict[str, int]:
    import sqlalchemy as sa

    from backend.app.db import session_scope
    from backend.models import OutboxAttempt, OutboxItem

    with session_scope() as session:
        items = {
            str(s.value): int(n)
            for s, n in session.execute(
                sa.select(OutboxItem.status, sa.func.count()).group_by(OutboxItem.status)
            )
        }
        attempts = {
            str(o.value): int(n)
            for o, n in session.execute(
                sa.select(OutboxAttempt.outcome, sa.func.count()).group_by(OutboxAttempt.outcome)
            )
        }
    return {**items, **{f"attempts_{k}": v for k, v in attempts.items()}}


def phase(name: str, env: dict[str, str], patient_ids: list[int], fake: Fake, logs: Path) -> dict[str, Any]:
    from backend.outbox.sender import drain_outbox

    _use_env(env)
    fake.ask("reset")
    before = _counts()
    queued, _ = enqueue_outreach(patient_ids)
    print(
        f"\n== {name}: {queued} SMS, {WORKERS} RQ workers, one SIGKILLed every {KILL_EVERY_S:.0f} s for "
        f"{FAULTS_S:.0f} s; provider down (503 / accept-and-hang) for {OUTAGE_S:.0f} s",
        flush=True,
    )
    workers = [_worker(env, (logs / f"{name}-w{i}.log").open("ab")) for i in range(WORKERS)]
    kills, mid_job, started = 0, 0, time.perf_counter()
    outage_sent = False
    next_kill, last_drain = started + KILL_EVERY_S, 0.0
    faults_end = started + FAULTS_S
    done_at: float | None = None
    stuck = -1
    try:
        while time.perf_counter() - started < GIVE_UP_S:
            now = time.perf_counter()
            if not outage_sent and now - started >= OUTAGE_AT_S:
                fake.ask("outage")
                outage_sent = True
            if now < faults_end and now >= next_kill:
                victim = random.randrange(WORKERS)
                mid_job += _kill(workers[victim])
                workers[victim] = _worker(env, (logs / f"{name}-w{victim}-{kills}.log").open("ab"))
                kills += 1
                next_kill = now + KILL_EVERY_S
            if now - last_drain >= 2:
                drain_outbox()
                last_drain = now
            counts = _counts()
            open_items = counts.get("pending", 0) + counts.get("sending", 0) - before.get("pending", 0)
            if stuck < 0 and now >= faults_end + STUCK_AFTER_S:
                stuck = open_items
            if open_items <= 0 and now >= faults_end:
                done_at = now
                break
            time.sleep(0.5)
    finally:
        for proc in workers:
            _kill(proc, signal.SIGTERM)
    stats = fake.ask("stats")
    after = _counts()
    sent = after.get("sent", 0) - before.get("sent", 0)
    failed = after.get("failed", 0) - before.get("failed", 0)
    result = {
        "sends": queued,
        "sent": sent,
        "failed": failed,
        "duplicated": stats["duplicated"],
        "lost": queued - stats["recipients"] - failed + max(0, sent - stats["recipients"]),
        "stuck": max(stuck, 0) if done_at is None or done_at > faults_end + STUCK_AFTER_S else 0,
        "recovery_s": round(done_at - faults_end, 1) if done_at else None,
        "kills": kills,
        "kills_mid_job": mid_job,
        "found": after.get("attempts_found", 0) - before.get("attempts_found", 0),
        "ambiguous": after.get("attempts_ambiguous", 0) - before.get("attempts_ambiguous", 0),
        "reference_repeats": stats["reference_repeats"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"  {result}", flush=True)
    return result


def run() -> dict[str, Any]:
    queue_name = f"careloop-faults-{secrets.token_hex(4)}"
    figures: dict[str, Any] = {}
    logs = Path(tempfile.gettempdir()) / f"careloop-faults-{secrets.token_hex(3)}"
    logs.mkdir(parents=True)
    with postgres_database() as (url, _name):
        fake = Fake(dict(base_env()))
        env = base_env()
        env.update(
            DATABASE_URL=url,
            REDIS_URL=REDIS_URL,
            CARELOOP_JOB_QUEUE=queue_name,
            CARELOOP_PUBLIC_URL="https://care.bench.invalid",
            CARELOOP_QUIET_HOURS_START="0",
            CARELOOP_QUIET_HOURS_END="0",
            CARELOOP_MAX_MESSAGES_PER_DAY="1000",
            CARELOOP_SEND_TIMEOUT_SECONDS=str(SEND_TIMEOUT_S),
        )
        queue = None
        try:
            _use_env(env)
            cli(env, "migrate")
            patients = [pid for pid, _ in seed_patients(2 * N)]
            queue = _queue()
            gateway = dict(
                env,
                CARELOOP_SMS_PROVIDER="http",
                CARELOOP_SMS_GATEWAY_URL=fake.urls["gateway_url"],
                CARELOOP_SMS_GATEWAY_TOKEN="fake-gateway-token",
            )
            figures["gateway"] = phase("gateway", gateway, patients[:N], fake, logs)
            from tests.channels.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

            twilio = dict(
                env,
                CARELOOP_TWILIO_ACCOUNT_SID=DEFAULT_ACCOUNT_SID,
                CARELOOP_TWILIO_AUTH_TOKEN=DEFAULT_AUTH_TOKEN,
                CARELOOP_TWILIO_API_BASE=fake.urls["base_url"],
                CARELOOP_TWILIO_SMS_FROM=SMS_FROM,
            )
            figures["twilio"] = phase("twilio", twilio, patients[N:], fake, logs)
        finally:
            from backend.app.db import dispose_engines

            dispose_engines()
            fake.close()
            if queue is not None:
                flush_queue(queue, [])
    print(f"  worker logs in {logs}", flush=True)
    return figures


def main() -> int:
    if "--serve-fake" in sys.argv:
        return serve_fake(float(sys.argv[sys.argv.index("--serve-fake") + 1]))
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.perf_counter()
    figures = run()
    g, t = figures["gateway"], figures["twilio"]
    flat = {
        "duplicated": g["duplicated"],  # the gateway has an idempotency reference
        "duplicated_ambiguous": t["duplicated"],  # Twilio: none, a lookup before each ambiguous resend
        "lost": g["lost"] + t["lost"],
        "stuck": g["stuck"] + t["stuck"],
        "recovery_s": max(g["recovery_s"] or 999, t["recovery_s"] or 999),
        "gateway": g,
        "twilio": t,
        "whole_run_s": round(time.perf_counter() - started),
    }
    report(flat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
