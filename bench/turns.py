"""Patient web chat throughput: turns per second and p50/p99 turn latency on SQLite and PostgreSQL.

Run from the repository root (no arguments needed):

    PYTHONPATH=. python bench/turns.py

For each database the script creates a fresh database (PostgreSQL: ``careloop_bench_<random>`` on
127.0.0.1:5432 as user ``postgres``, dropped at the end; SQLite: a file in a temporary directory),
runs ``careloop migrate`` and ``careloop demo --patients N`` in subprocesses, starts
``careloop serve --workers W`` on a free loopback port with no REDIS_URL (so every turn job runs
inline inside the request that stored the message), and waits for ``/healthz``.

What one "turn" is
------------------
One ``POST /c/<token>/messages`` with ``Accept: application/json``, a unique ``client_id`` and
``after=<last message id seen>``, answered 200 with ``{"duplicate": false, ...}``. Inside that
request the server reads the signed link, stores the inbound message, commits, runs the turn job
(``backend.dialogue.turns.run_turn``: lock the conversation, run the bot over the pending inbound, store
replies and effects, commit) and returns the new items. Its latency, measured by the client from
writing the request to reading the whole response, is the turn latency.

Each of the 16 concurrent clients owns a disjoint slice of the demo patients and walks each of its
patients through the same script, one request at a time:

1. free text the welcome flow does not understand -> the bot re-asks the consent question;
2. ``choice=yes`` -> consent granted (consent event + audit row), thanks, the flow ends;
3. free text after the end -> "passed to staff": handoff task (+ audit row), owner becomes staff.

A client that runs out of patients starts again on its slice; those further turns go to
conversations staff now own, so they are stored and processed with no bot reply (counted apart
as ``staff_owned``). Every conversation is opened beforehand with ``GET /c/<token>`` (which runs
the greeting turn); those page opens, and the first patients' scripts run as a warm-up, are not
measured. The measured phase lasts a fixed time (``--duration``, 20 s by default).

The HTTP client is a minimal keep-alive HTTP/1.1 client on asyncio (one connection per client),
so it costs the shared 2-core machine as little CPU as possible; its CPU use is reported.

The output ends with one JSON line: ``turns_per_s``, ``p50_ms``, ``p99_ms`` (PostgreSQL) and the
same figures prefixed ``sqlite_`` for SQLite, plus the settings used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: `bench` is a package

from bench.harness import (
    Connection,
    CpuSample,
    HttpError,
    base_env,
    cli,
    make_tokens,
    percentile,
    pg_connect,
    postgres_database,
    report,
    server,
)

TEXT_UNCLEAR = "When is my next appointment?"
TEXT_AFTER_END = "Thanks. Could a nurse call me about my medicine?"
_DATA_ID = re.compile(rb'data-id="(\d+)"')


# --------------------------------------------------------------------------- HTTP client


# --------------------------------------------------------------------------- load


@dataclass
class PatientState:
    token: str
    after: int = 0
    step: int = 0  # how many scripted turns this patient has had


@dataclass
class Stats:
    latencies_ns: list[int] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    latencies_by_kind: dict[str, list[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    missing_reply: int = 0

    def count(self, kind: str) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1


def _form(patient: PatientState, client_id: str) -> tuple[str, bytes]:
    """The next scripted message for this patient: (kind, urlencoded form body)."""
    fields = {"client_id": client_id, "after": str(patient.after)}
    if patient.step == 0:
        kind, fields["text"] = "reprompt", TEXT_UNCLEAR
    elif patient.step == 1:
        kind, fields["text"], fields["choice"] = "consent", "Yes, I agree", "yes"
    elif patient.step == 2:
        kind, fields["text"] = "handoff", TEXT_AFTER_END
    else:
        kind, fields["text"] = "staff_owned", f"{TEXT_AFTER_END} ({patient.step})"
    return kind, urllib.parse.urlencode(fields).encode("ascii")


async def _turn(conn: Connection, patient: PatientState, client_id: str, stats: Stats | None) -> None:
    kind, body = _form(patient, client_id)
    started = time.perf_counter_ns()
    status, payload = await conn.request("POST", f"/c/{patient.token}/messages", body)
    elapsed = time.perf_counter_ns() - started
    if status != 200:
        raise HttpError(f"POST {kind}: HTTP {status}: {payload[:200]!r}")
    data = json.loads(payload)
    if data.get("duplicate"):
        raise HttpError(f"POST {kind}: reported duplicate")
    items: list[dict[str, Any]] = data["items"]
    if items:
        patient.after = max(patient.after, max(int(item["id"]) for item in items))
    patient.step += 1
    if stats is not None:
        stats.latencies_ns.append(elapsed)
        stats.latencies_by_kind.setdefault(kind, []).append(elapsed)
        stats.count(kind)
        if kind != "staff_owned" and not any(not item["mine"] for item in items):
            stats.missing_reply += 1  # the inline turn job failed (it is logged, not raised)


async def _open_pages(port: int, patients: list[PatientState], concurrency: int,
                      deadline: float) -> tuple[list[PatientState], list[int]]:
    """GET /c/<token> for each patient (creates the conversation, greeting turn) until all are open or
    the deadline passes; returns the opened patients and the page latencies."""
    latencies: list[int] = []
    opened: list[PatientState] = []
    queue = list(reversed(patients))

    async def worker() -> None:
        conn = Connection(port)
        try:
            while queue and time.perf_counter() < deadline:
                patient = queue.pop()
                started = time.perf_counter_ns()
                status, payload = await conn.request("GET", f"/c/{patient.token}")
                latencies.append(time.perf_counter_ns() - started)
                if status != 200:
                    raise HttpError(f"GET page: HTTP {status}: {payload[:200]!r}")
                ids = [int(x) for x in _DATA_ID.findall(payload)]
                if not ids:
                    raise HttpError("chat page shows no messages (greeting turn did not run?)")
                patient.after = max(ids)
                opened.append(patient)
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return opened, latencies


async def _run_scripts(port: int, slices: list[list[PatientState]], deadline: float | None,
                       max_rounds: int, stats: Stats | None) -> None:
    """Each client walks its slice of patients through the script until the deadline (or once)."""

    async def client(index: int, mine: list[PatientState]) -> None:
        conn = Connection(port)
        sequence = 0
        try:
            for _round in range(max_rounds):
                for patient in mine:
                    steps = 3 if patient.step < 3 else 1
                    for _ in range(steps):
                        if deadline is not None and time.perf_counter() >= deadline:
                            return
                        sequence += 1
                        client_id = f"b{index:02d}-{secrets.token_hex(4)}-{sequence:07d}"
                        try:
                            await _turn(conn, patient, client_id, stats)
                        except (HttpError, ValueError, KeyError) as exc:
                            if stats is None:
                                raise
                            stats.errors.append(str(exc))
                            if len(stats.errors) > 100:
                                raise
        finally:
            await conn.close()

    await asyncio.gather(*(client(i, s) for i, s in enumerate(slices)))


# --------------------------------------------------------------------------- databases and server


@contextlib.contextmanager
def sqlite_database() -> Iterator[tuple[str, str]]:
    directory = tempfile.mkdtemp(prefix="careloop-bench-")
    path = Path(directory) / "bench.db"
    try:
        yield f"sqlite:///{path}", str(path)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _patient_ids(url: str, name: str, limit: int) -> list[int]:
    query = f"SELECT id FROM patients ORDER BY id LIMIT {int(limit)}"  # noqa: S608  (an int)
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(name)) as conn:
            return [row[0] for row in conn.execute(query)]
    with pg_connect(name) as conn:
        return [row[0] for row in conn.execute(query)]


def _pg_settings() -> dict[str, str]:
    with pg_connect() as conn:
        rows = conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('synchronous_commit', 'fsync', 'max_connections', 'shared_buffers')"
        ).fetchall()
    return {str(n): str(s) for n, s in rows}


# --------------------------------------------------------------------------- one database


@dataclass
class Result:
    database: str
    workers: int
    turns: int
    seconds: float
    turns_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    missing_reply: int
    by_kind: dict[str, int]
    conversations: int
    open_pages_per_s: float
    cpu_pct: dict[str, float]


def _deal(patients: list[PatientState], clients: int) -> list[list[PatientState]]:
    return [patients[i::clients] for i in range(clients)]


def bench_one(database: str, args: argparse.Namespace) -> Result:
    print(f"\n== {database}: {args.workers} server worker(s), {args.concurrency} clients, "
          f"{args.duration:.0f} s measured", flush=True)
    make_db = postgres_database if database == "postgresql" else sqlite_database
    with make_db() as (url, name):
        env = base_env()
        env["DATABASE_URL"] = url
        cli(env, "migrate")
        try:  # as `careloop run` does: publish the questionnaires so follow-up dispatch has them
            cli(env, "publish")
        except RuntimeError as exc:
            print(f"  (publish skipped: {str(exc).splitlines()[0]})", flush=True)
        cli(env, "demo", "--patients", str(args.patients))
        ids = _patient_ids(url, name, args.patients)
        patients = [PatientState(token) for token in make_tokens(env, ids)]

        with server(env, args.workers) as (port, pgid):
            started = time.perf_counter()
            opened, open_ns = asyncio.run(
                _open_pages(port, patients, args.concurrency, started + args.open_seconds)
            )
            open_s = time.perf_counter() - started
            print(f"  opened {len(opened)} chat pages (conversation + greeting turn) in {open_s:.1f} s: "
                  f"{len(opened) / open_s:.0f}/s, p50 {percentile(sorted(open_ns), 50):.0f} ms", flush=True)
            warm = opened[: args.concurrency * 2]
            measured = opened[len(warm) :]
            if not measured:
                raise RuntimeError("no conversations left to measure; raise --open-seconds")
            started = time.perf_counter()
            asyncio.run(_run_scripts(port, _deal(warm, args.concurrency), None, 1, None))
            print(f"  warm-up: {3 * len(warm)} turns in {time.perf_counter() - started:.1f} s", flush=True)

            stats = Stats()
            cpu0 = CpuSample.take(pgid)
            started = time.perf_counter()
            asyncio.run(_run_scripts(port, _deal(measured, args.concurrency), started + args.duration,
                                     1000, stats))
            seconds = time.perf_counter() - started
            cpu = CpuSample.take(pgid).percent_since(cpu0, seconds)

    lat = sorted(stats.latencies_ns)
    result = Result(
        database=database, workers=args.workers, turns=len(lat), seconds=seconds,
        turns_per_s=len(lat) / seconds, p50_ms=percentile(lat, 50), p90_ms=percentile(lat, 90),
        p99_ms=percentile(lat, 99), max_ms=lat[-1] / 1e6 if lat else float("nan"),
        errors=len(stats.errors), missing_reply=stats.missing_reply,
        by_kind=dict(sorted(stats.by_kind.items())), conversations=len(measured),
        open_pages_per_s=len(opened) / open_s, cpu_pct=cpu,
    )
    print(f"  {result.turns} turns in {seconds:.1f} s over {len(measured)} conversations: "
          f"{result.turns_per_s:.1f} turns/s, p50 {result.p50_ms:.1f} ms, p90 {result.p90_ms:.1f} ms, "
          f"p99 {result.p99_ms:.1f} ms, max {result.max_ms:.1f} ms", flush=True)
    by_kind_ms = {
        kind: f"p50 {percentile(sorted(v), 50):.0f} / p99 {percentile(sorted(v), 99):.0f} ms"
        for kind, v in sorted(stats.latencies_by_kind.items())
    }
    print(f"  latency by turn kind: {by_kind_ms}", flush=True)
    print(f"  turn mix {result.by_kind}; errors {result.errors}; "
          f"turns without the expected bot reply {result.missing_reply}", flush=True)
    per_turn = {k: round(10 * v / result.turns_per_s, 1) for k, v in cpu.items()} if result.turns else {}
    print(f"  CPU during the measured phase, % of one core (the machine has {os.cpu_count()}): {cpu}; "
          f"CPU ms per turn: {per_turn}", flush=True)
    if cpu["other"] > 25:
        print(f"  WARNING: other processes used {cpu['other']}% of a core during the measurement; "
              "the figures are depressed by that load", flush=True)
    if stats.errors:
        print(f"  first error: {stats.errors[0]}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per database")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--patients", type=int, default=1500, help="demo patients (one conversation each)")
    parser.add_argument("--open-seconds", type=float, default=90.0,
                        help="at most this long opening chat pages before the measured phase")
    parser.add_argument("--workers", type=int, default=2, help="`careloop serve --workers`")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="benchmark one database")
    args = parser.parse_args(argv)
    if not (1 <= args.duration <= 120 and 1 <= args.concurrency <= 256 and 100 <= args.patients <= 20000
            and 1 <= args.open_seconds <= 300 and 1 <= args.workers <= 8):
        parser.error("limits: duration 1-120 s, concurrency 1-256, patients 100-20000, "
                     "open-seconds 1-300, workers 1-8")

    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    databases = [args.only] if args.only else ["sqlite", "postgresql"]
    if "postgresql" in databases:
        print(f"PostgreSQL server settings: {_pg_settings()}", flush=True)
    results = {db: bench_one(db, args) for db in databases}

    figures: dict[str, Any] = {}
    for db, prefix in (("postgresql", ""), ("sqlite", "sqlite_")):
        if db in results:
            r = results[db]
            figures.update({
                f"{prefix}turns_per_s": round(r.turns_per_s, 1), f"{prefix}p50_ms": round(r.p50_ms, 1),
                f"{prefix}p90_ms": round(r.p90_ms, 1), f"{prefix}p99_ms": round(r.p99_ms, 1),
                f"{prefix}turns": r.turns, f"{prefix}errors": r.errors + r.missing_reply,
                f"{prefix}server_cpu_pct": r.cpu_pct["server"], f"{prefix}other_cpu_pct": r.cpu_pct["other"],
            })
    figures.update(concurrency=args.concurrency, workers=args.workers, duration_s=args.duration)
    print()
    for db, r in results.items():
        print(f"{db:>10}: {r.turns_per_s:7.1f} turns/s  p50 {r.p50_ms:6.1f} ms  p99 {r.p99_ms:6.1f} ms  "
              f"({r.turns} turns, {r.errors + r.missing_reply} errors, {r.workers} worker(s))")
    if "postgresql" in results:
        pg = results["postgresql"]
        met = pg.turns_per_s >= 200 and pg.p99_ms < 100
        print(f"target on PostgreSQL, >= 200 turns/s with p99 < 100 ms: {'met' if met else 'NOT met'}")
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
