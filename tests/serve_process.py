"""`careloop serve` in a subprocess for tests that need the real server (browser tests, worker tests).

The server's output is read all the time by a thread: an unread pipe fills (64 KiB) and then blocks
the server on its next log line. The last lines are kept, to be shown when a test fails."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

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
    deadline, seen = time.monotonic() + START_SECONDS, 0
    while not healthy(f"http://127.0.0.1:{port}"):
        if len(proc.output_lines) != seen:  # still preparing (`careloop run` migrates and seeds first)
            deadline, seen = time.monotonic() + START_SECONDS, len(proc.output_lines)
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=10)
            time.sleep(0.2)  # the reader thread takes the last lines
            raise RuntimeError(f"server did not start: {proc.output()}")
        time.sleep(0.2)
    return proc
