"""The cost of the audit hash chain on a write-heavy path, on PostgreSQL.

Each transaction writes one audit row and commits, the way a staff action or a record view does. Two
ways, with 1 and with 4 concurrent writers (threads, each with its own connection):

- `sealed`: through `backend.services.audit.record`, so the row is sealed at commit (the chain head is
  locked with SELECT ... FOR UPDATE, the row gets its place and hash, the head moves on);
- `plain`: the same row added directly, not sealed: what an audit write cost before the chain.

For each: transactions per second and the commit's p50/p95 latency. Then `careloop audit verify`'s walk
over every sealed row (rows per second), which also proves the concurrent writers left one valid chain.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import percentile, postgres_database, report  # noqa: E402


def _run(mode: str, writers: int, per_writer: int) -> dict[str, float]:
    from backend.app.db import session_scope
    from backend.models import AuditEvent
    from backend.services import audit

    latencies: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(writers)

    def work(writer: int) -> None:
        mine = []
        barrier.wait()
        for n in range(per_writer):
            started = time.perf_counter_ns()
            with session_scope() as session:
                if mode == "sealed":
                    audit.record(session, "bench.write", subject=("bench", n), writer=writer)
                else:
                    session.add(
                        AuditEvent(action="bench.write", subject_type="bench", subject_id=n, detail={})
                    )
            mine.append(time.perf_counter_ns() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "tx_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-writer", type=int, default=400, help="transactions per writer and run")
    args = parser.parse_args()
    with postgres_database() as (url, _name):
        os.environ.update(
            DATABASE_URL=url,
            CARELOOP_ENV_FILE="/nonexistent/careloop.env",
            CARELOOP_SECRET_KEY="bench-secret-" + "x" * 40,
            CARELOOP_DATA_KEY=base64.b64encode(bytes(range(32))).decode(),
        )
        from backend.app.db import dispose_engines, session_scope
        from backend.app.migrate import upgrade
        from backend.app.settings import get_settings
        from backend.security.audit_verify import verify_chain

        upgrade(url)
        figures: dict[str, object] = {"load": os.getloadavg()[0]}
        for writers in (1, 4):
            for mode in ("plain", "sealed"):
                _run(mode, writers, 20)  # warm the pool and the statement caches
                result = _run(mode, writers, args.per_writer)
                print(f"{mode:6} writers={writers}: {result}", flush=True)
                for name, value in result.items():
                    figures[f"{mode}_w{writers}_{name}"] = value
        from sqlalchemy import delete

        from backend.models import AuditEvent

        with session_scope() as session:  # the unsealed baseline rows are not part of the chain
            session.execute(delete(AuditEvent).where(AuditEvent.seq.is_(None)))
        started = time.perf_counter()
        with session_scope() as session:
            verdict = verify_chain(session, get_settings().audit_key_bytes)
        elapsed = time.perf_counter() - started
        print(f"verify: {verdict.checked} rows in {elapsed:.2f} s, ok={verdict.ok} {verdict.problem or ''}")
        figures.update(
            verify_rows=verdict.checked,
            verify_rows_per_s=round(verdict.checked / elapsed),
            chain_ok=verdict.ok,
        )
        dispose_engines()
    report(figures)


if __name__ == "__main__":
    main()
