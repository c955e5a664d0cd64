"""`careloop serve` in a subprocess for tests that need the real server (browser tests, worker tests)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def start_serve(env: dict[str, str], port: int, *args: str) -> subprocess.Popen[str]:
    """Start the server on 127.0.0.1:`port` and wait (up to 30 s) until /healthz answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not healthy(f"http://127.0.0.1:{port}"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            output = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"server did not start: {output}")
        time.sleep(0.2)
    return proc
