"""Inbound messages under faults: 2,000 signed Twilio SMS webhooks into a real `careloop serve` with RQ
workers and `careloop scheduler`, while an RQ worker is SIGKILLed every 3 s for 40 s, Redis is down for
20 s inside that window (killed and started again, empty, as after a crash) and Rasa is absent (its URL
points at a closed port, so the shared breaker opens and the embedded classifier reads the text).

Usage: ``python bench/faults_inbound.py`` (no arguments; about 3-6 minutes). Needs PostgreSQL on
127.0.0.1:5432 and a `redis-server` binary: the bench runs a private redis-server on a free loopback
port of its own (the shared one on 6379 is never touched), and creates and drops its own database. The
local fake Twilio (tests/channels/fake_twilio.py, in its own process, as in bench/faults.py) receives
the replies.

Each seeded patient sends one webhook (a unique MessageSid, signed as Twilio signs), so each
conversation holds exactly one inbound message and the replies to it. Webhooks are posted at a steady
rate over the first 36 s of the fault window, so some arrive while Redis is down (the message is stored,
its turn cannot be queued: the scheduler's retry sweep must find it once Redis is back).

Figures: `accepted` (answered 200), `refused` (any other answer or a broken connection; Twilio would
retry those), `lost` (accepted and never to be handled: no inbound row for it, or the row marked
`processed` with no reply stored; a row still `received` is not lost, the retry sweep queues its turn
every minute, and is counted in `unhandled_at_end`), `duplicated` (a conversation with more replies or bot steps
than a conversation handled without faults has, or a patient who got the reply SMS twice), `stuck`
(not handled 60 s after the faults end), `recovery_s` (faults end to every accepted message handled and
every reply sent; null when that did not happen within GIVE_UP_S), `turns_per_s_after_faults` (how
fast the backlog drained). The last line is JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.channels import HOOK_PATH, SMS_FROM, Webhook, _use_env, make_webhook, seed_patients
from bench.faults import Fake, _kill, _worker
from bench.harness import (
    HOST,
    REPO_ROOT,
    Connection,
    HttpError,
    base_env,
    cli,
    free_port,
    postgres_database,
    report,
    server,
)

N = 2000
WORKERS = 3
KILL_EVERY_S = 3.0
OUTAGE_AT_S, OUTAGE_S = 12.0, 20.0  # Redis is down from 12 s to 32 s after the first webhook
FAULTS_S = 40.0
POST_FOR_S = 36.0  # the webhooks are spread over this much of the fault window
CONNECTIONS = 8
STUCK_AFTER_S = 60.0
GIVE_UP_S = 420.0  # after the faults end (the whole run stays within 10 minutes)


class PrivateRedis:
    """A redis-server of the bench's own (no persistence), that it may kill and start again."""

    def __init__(self, folder: Path) -> None:
        self.port, self.folder = free_port(), folder
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        from redis import Redis

        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(Exception):
                if Redis(host=HOST, port=self.port, socket_connect_timeout=0.2).ping():
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("the private redis-server did not start")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def _spawn(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "backend.app.cli", command],
        cwd=REPO_ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def post_all(port: int, hooks: list[Webhook], started: float) -> tuple[list[str], Counter[str]]:
    """Post every webhook once, the i-th not before started + i * POST_FOR_S / len; returns the accepted
    MessageSids and a count of the answers."""
    accepted: list[str] = []
    answers: Counter[str] = Counter()
    pending = iter(enumerate(hooks))
    gap = POST_FOR_S / len(hooks)

    async def client() -> None:
        conn = Connection(port)
        try:
            for i, hook in pending:
                delay = started + i * gap - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                headers = {"X-Twilio-Signature": hook.signature}
                try:
                    status, _ = await asyncio.wait_for(
                        conn.request("POST", HOOK_PATH, hook.body, extra_headers=headers), 30
                    )
                except (TimeoutError, HttpError, OSError) as exc:
                    answers[type(exc).__name__] += 1
                    await conn.close()
                    continue
                answers[str(status)] += 1
                if status == 200:
                    accepted.append(hook.sid)
        finally:
            await conn.close()

    await asyncio.gather(*(client() for _ in range(CONNECTIONS)))
    return accepted, answers


def _state(sids: list[str]) -> dict[str, Any]:
    """What the database holds for the accepted webhooks: handled or not, and replies per conversation."""
    import sqlalchemy as sa

    from backend.app.db import session_scope
    from backend.models import ConversationStep, Direction, Message, MessageStatus, OutboxItem

    with session_scope() as session:
        rows = session.execute(
            sa.select(Message.provider_message_id, Message.status, Message.conversation_id).where(
                Message.direction == Direction.INBOUND, Message.provider_message_id.in_(sids)
            )
        ).all()
        conversations = {int(c) for _, _, c in rows}
        replies = Counter(
            dict(
                session.execute(
                    sa.select(Message.conversation_id, sa.func.count())
                    .where(Message.direction == Direction.OUTBOUND)
                    .group_by(Message.conversation_id)
                ).all()
            )
        )
        steps = Counter(
            dict(
                session.execute(
                    sa.select(ConversationStep.conversation_id, sa.func.count()).group_by(
                        ConversationStep.conversation_id
                    )
                ).all()
            )
        )
        outbox = dict(
            session.execute(sa.select(OutboxItem.status, sa.func.count()).group_by(OutboxItem.status)).all()
        )
    stored = Counter(sid for sid, _, _ in rows)
    handled = {
        sid for sid, status, conv in rows if status == MessageStatus.PROCESSED and replies[int(conv)] > 0
    }
    return {
        "missing": len(set(sids) - set(stored)),
        "waiting": sum(1 for _, status, _ in rows if status == MessageStatus.RECEIVED),
        "stored": stored,
        "not_handled": len(set(sids) - handled),
        "unreplied_processed": sum(
            1 for _, status, conv in rows if status == MessageStatus.PROCESSED and replies[int(conv)] == 0
        ),
        "conversations": conversations,
        "replies": replies,
        "steps": steps,
        "open_sends": sum(int(n) for s, n in outbox.items() if str(s.value) in ("pending", "sending")),
        "outbox": {str(s.value): int(n) for s, n in outbox.items()},
    }


def _duplicated(state: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Conversations with more replies or steps than the usual (most common) count of a handled one."""
    convs = state["conversations"]
    replies = Counter(state["replies"][c] for c in convs if state["replies"][c] > 0)
    steps = Counter(state["steps"][c] for c in convs if state["steps"][c] > 0)
    usual_replies = replies.most_common(1)[0][0] if replies else 0
    usual_steps = steps.most_common(1)[0][0] if steps else 0
    extra = {
        c for c in convs if state["replies"][c] > usual_replies or state["steps"][c] > usual_steps
    }
    return len(extra), {
        "usual_replies": usual_replies,
        "replies_per_conversation": dict(sorted(replies.items())),
        "steps_per_conversation": dict(sorted(steps.items())),
    }


def run() -> dict[str, Any]:
    logs = Path(tempfile.gettempdir()) / f"careloop-faults-inbound-{secrets.token_hex(3)}"
    logs.mkdir(parents=True)
    redis = PrivateRedis(logs)
    redis.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with postgres_database() as (url, _name):
            from tests.channels.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

            fake = Fake(dict(base_env()), latency=0.0)
            env = base_env()
            env.update(
                DATABASE_URL=url,
                REDIS_URL=redis.url,
                CARELOOP_JOB_QUEUE=f"careloop-faults-in-{secrets.token_hex(4)}",
                CARELOOP_PUBLIC_URL="https://care.bench.invalid",  # what Twilio signs
                CARELOOP_TWILIO_ACCOUNT_SID=DEFAULT_ACCOUNT_SID,
                CARELOOP_TWILIO_AUTH_TOKEN=DEFAULT_AUTH_TOKEN,
                CARELOOP_TWILIO_API_BASE=fake.urls["base_url"],
                CARELOOP_TWILIO_SMS_FROM=SMS_FROM,
                CARELOOP_QUIET_HOURS_START="0",
                CARELOOP_QUIET_HOURS_END="0",
                CARELOOP_MAX_MESSAGES_PER_DAY="1000",
                CARELOOP_SEND_TIMEOUT_SECONDS="3",
                CARELOOP_NLU_URL=f"http://{HOST}:{free_port()}",  # nothing listens: Rasa is absent
            )
            try:
                _use_env(env)
                cli(env, "migrate")
                patients = seed_patients(N)
                hook_url = f"{env['CARELOOP_PUBLIC_URL']}{HOOK_PATH}"
                hooks = [make_webhook(hook_url, DEFAULT_AUTH_TOKEN, phone) for _, phone in patients]
                with server(env, workers=2) as (port, _pgid):
                    return _faults(env, port, hooks, redis, fake, procs, logs)
            finally:
                for proc in procs:
                    _kill(proc, signal.SIGTERM)
                from backend.app.db import dispose_engines

                dispose_engines()
                fake.close()
    finally:
        redis.kill()
        print(f"  worker and scheduler logs in {logs}", flush=True)


def _faults(
    env: dict[str, str],
    port: int,
    hooks: list[Webhook],
    redis: PrivateRedis,
    fake: Fake,
    procs: list[subprocess.Popen[bytes]],
    logs: Path,
) -> dict[str, Any]:
    procs.append(_spawn("scheduler", env, logs / "scheduler.log"))
    workers = [_worker(env, (logs / f"w{i}.log").open("ab")) for i in range(WORKERS)]
    procs.extend(workers)
    print(
        f"\n== {len(hooks)} signed webhooks over {POST_FOR_S:.0f} s, {WORKERS} RQ workers (one SIGKILLed every "
        f"{KILL_EVERY_S:.0f} s for {FAULTS_S:.0f} s), Redis down {OUTAGE_AT_S:.0f}-"
        f"{OUTAGE_AT_S + OUTAGE_S:.0f} s, Rasa absent",
        flush=True,
    )
    started = time.perf_counter()
    pool = ThreadPoolExecutor(1)  # the webhooks go out from a thread while this one injects the faults
    posting = pool.submit(lambda: asyncio.run(post_all(port, hooks, started)))
    kills = mid_job = 0
    redis_down = redis_back = False
    next_kill = started + KILL_EVERY_S
    faults_end = started + FAULTS_S
    while time.perf_counter() < faults_end:
        now = time.perf_counter()
        if not redis_down and now - started >= OUTAGE_AT_S:
            redis.kill()
            redis_down = True
        if redis_down and not redis_back and now - started >= OUTAGE_AT_S + OUTAGE_S:
            redis.start()  # empty: what the queue held is gone
            redis_back = True
        if now >= next_kill:
            victim = random.randrange(WORKERS)
            mid_job += _kill(workers[victim])
            workers[victim] = _worker(env, (logs / f"w{victim}-{kills}.log").open("ab"))
            procs.append(workers[victim])
            kills += 1
            next_kill = now + KILL_EVERY_S
        time.sleep(0.1)
    accepted, answers = posting.result()
    pool.shutdown()
    print(f"  answers: {dict(answers)}; {kills} kills ({mid_job} mid-job)", flush=True)
    stuck = -1
    done_at: float | None = None
    state = _state(accepted)
    handled_at_faults_end = len(accepted) - state["not_handled"]
    while time.perf_counter() - faults_end < GIVE_UP_S:
        now = time.perf_counter()
        state = _state(accepted)
        if stuck < 0 and now - faults_end >= STUCK_AFTER_S:
            stuck = state["not_handled"]
        if int(now - faults_end) % 30 == 0:
            print(f"  +{now - faults_end:.0f} s: {state['not_handled']} not handled, outbox {state['outbox']}",
                  flush=True)
        if state["not_handled"] == 0 and state["open_sends"] == 0:
            done_at = now
            break
        time.sleep(1.0)
    if stuck < 0:
        stuck = 0  # all handled before the 60 s mark
    fake_stats = fake.ask("stats")
    duplicated, shape = _duplicated(state)
    usual = int(shape["usual_replies"])
    # a patient who got more reply SMS than a conversation stores replies (every one is sent once)
    resent = sum((int(k) - usual) * n for k, n in fake_stats["per_recipient"].items() if int(k) > usual)
    stored_twice = sum(1 for n in state["stored"].values() if n > 1)
    result = {
        "webhooks": len(hooks),
        "accepted": len(accepted),
        "refused": len(hooks) - len(accepted),
        "answers": dict(answers),
        # lost: what no mechanism will handle any more. A row still `received` is not lost: the retry
        # sweep queues its turn every minute for as long as it waits (it is `unhandled_at_end`).
        "lost": state["missing"] + state["unreplied_processed"],
        "missing_rows": state["missing"],
        "processed_without_reply": state["unreplied_processed"],
        "unhandled_at_end": state["not_handled"],
        "waiting_at_end": state["waiting"],
        "turns_per_s_after_faults": round(
            (len(accepted) - state["not_handled"] - handled_at_faults_end)
            / max(1.0, time.perf_counter() - faults_end),
            2,
        ),
        "duplicated": duplicated + stored_twice,
        "stored_twice": stored_twice,
        "duplicated_sends": resent,
        "replies_sent": fake_stats["accepted"],
        "stuck": stuck,
        "recovery_s": round(done_at - faults_end, 1) if done_at else None,
        "kills": kills,
        "kills_mid_job": mid_job,
        "redis_outage_s": OUTAGE_S,
        "outbox": state["outbox"],
        **shape,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"  {result}", flush=True)
    return result


def main() -> int:
    if not shutil.which("redis-server"):
        print("needs a redis-server binary on PATH", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.perf_counter()
    figures = run()
    figures["whole_run_s"] = round(time.perf_counter() - started)
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
