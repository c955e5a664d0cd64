"""`careloop serve` in a subprocess for tests that need the real server (browser tests, worker tests),
started as a command or forked from a zygote that imported the product once (tests/serve_zygote.py).

The server's output is read all the time by a thread: an unread pipe fills (64 KiB) and then blocks
the server on its next log line. The last lines are kept, to be shown when a test fails."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import httpx

ROOT = Path(__file__).resolve().parents[1]
_KEPT_LINES = 400
# How long a start may take before it counts as hung: the import of the app alone took 36 s (measured)
# on a 2-core machine running the suite on both cores beside other work; idle, it takes about 2 s.
START_SECONDS = 120


class ServeProcess(subprocess.Popen[str]):
    """The server process, with the tail of what it printed."""

    output_lines: deque[str]

    def output(self) -> str:
        return "".join(self.output_lines)


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _drain(proc: ServeProcess) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        proc.output_lines.append(line)


def start_serve(env: dict[str, str], port: int, *args: str) -> ServeProcess:
    """Start the server on 127.0.0.1:`port` and wait until /healthz answers."""
    command = [sys.executable, "-m", "backend.app.cli", "serve", "--port", str(port), *args]
    return start_command(command, env, port)


def start_command(command: list[str], env: dict[str, str], port: int, *, cwd: Path = ROOT) -> ServeProcess:
    """Start a command that ends up serving on 127.0.0.1:`port` (`careloop serve`, `careloop run`) and wait
    (up to START_SECONDS after its last line of output) until /healthz answers."""
    proc = ServeProcess(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    proc.output_lines = deque(maxlen=_KEPT_LINES)
    threading.Thread(target=_drain, args=(proc,), daemon=True, name=f"serve-{port}-output").start()
    _wait_healthy(proc, port, lambda: len(proc.output_lines))
    return proc


class _Started(Protocol):
    def poll(self) -> int | None: ...
    def kill(self) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def output(self) -> str: ...


def _wait_healthy(proc: _Started, port: int, progress: Callable[[], int]) -> None:
    """Wait until the server answers /healthz; kill it if it dies or shows no progress for START_SECONDS."""
    deadline, seen = time.monotonic() + START_SECONDS, progress()
    while not healthy(f"http://127.0.0.1:{port}"):
        if progress() != seen:  # still preparing (`careloop run` migrates and seeds first)
            deadline, seen = time.monotonic() + START_SECONDS, progress()
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=10)
            time.sleep(0.2)  # the reader thread takes the last lines
            raise RuntimeError(f"server did not start: {proc.output()}")
        time.sleep(0.1)


class ForkedServer:
    """A `careloop serve` forked by tests/serve_zygote.py: not this process's child, so it is watched
    through its process group and the status file the zygote writes when it reaps it."""

    def __init__(self, pid: int, log: Path) -> None:
        self.pid = pid
        self.log = log
        self._status = Path(f"{log}.status")

    def output(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines(keepends=True)
        except FileNotFoundError:
            return ""
        return "".join(lines[-_KEPT_LINES:])

    def poll(self) -> int | None:
        try:
            return int(self._status.read_text())
        except (FileNotFoundError, ValueError):  # running, or the status half-written
            return None

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.pid, signum)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"server {self.pid}", timeout or 0)
            time.sleep(0.05)
        return code


class Zygote:
    """The test worker's handle on tests/serve_zygote.py: started once, asked for a server per test."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.workdir = workdir
        # One thread for the numerical libraries: the zygote forks after loading the safety net's model,
        # and a thread pool would not survive into the children.
        env = {**env, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.serve_zygote"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._count = 0
        ready = self._answer()
        if "ready" not in ready:
            raise RuntimeError(f"the server zygote did not start: {ready}")

    def _answer(self) -> dict[str, int]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the server zygote ended (exit {self.proc.wait(timeout=10)})")
        answer: dict[str, int] = json.loads(line)
        return answer

    def serve(self, env: dict[str, str], port: int, *args: str) -> ForkedServer:
        """`careloop serve --port PORT ARGS` with `env`, forked; returns once /healthz answers."""
        assert self.proc.stdin is not None
        self._count += 1
        log = self.workdir / f"serve-{port}-{self._count}.log"
        request = {
            "argv": ["serve", "--port", str(port), *args],
            "env": env,
            "cwd": str(ROOT),
            "log": str(log),
        }
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        server = ForkedServer(self._answer()["pid"], log)

        def progress() -> int:
            return log.stat().st_size if log.exists() else 0

        _wait_healthy(server, port, progress)
        return server

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # the zygote's loop ends
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
