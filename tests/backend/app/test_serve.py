"""`careloop serve --workers 2`: pre-forked workers on SO_REUSEPORT sockets, supervised by the parent."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from backend.app.serve import reuseport_supported
from tests.rasa_fixtures import free_port
from tests.serve_process import START_SECONDS, healthy, start_serve

pytestmark = pytest.mark.skipif(not reuseport_supported(), reason="needs SO_REUSEPORT (Linux)")


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_workers_serve_a_dead_one_is_replaced_and_sigterm_stops_them_all(
    tmp_path: Path, sqlite_template: Path
) -> None:
    database = tmp_path / "careloop.db"
    shutil.copy(sqlite_template, database)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "CARELOOP_PUBLIC_URL": base}
    env.pop("REDIS_URL", None)
    proc = start_serve(env, port, "--workers", "2")
    try:
        first = _children(proc.pid)
        assert len(first) == 3  # two HTTP workers and, without Redis, the periodic-jobs process
        for _ in range(20):  # a new connection each time: every worker that gets one answers it
            assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200

        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: len(_children(proc.pid) - {victim}) == 3, START_SECONDS, "a replacement process")
        assert victim not in _children(proc.pid)
        # The replacement binds its socket before the app is imported; on a loaded machine the
        # connections the kernel hands that socket wait a few seconds for it to start accepting.
        _wait(lambda: healthy(base), START_SECONDS, "every worker to answer")

        workers = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        _wait(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), 5, "the workers to end")
        assert not healthy(base)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
