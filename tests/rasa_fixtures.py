"""The real Rasa server for the tests that need one: started once per session from `make nlu`'s model.

`rasa_url` reuses a server on 127.0.0.1:5005 when it serves the model `make nlu` built for the
current data; otherwise it starts `rasa run` from the cached venv and model on a free port, waits
for /status (about 25-45 s) and stops it when the session ends. Only tests that ask for it pay that,
and the suite's xdist workers share the one server (it takes 1.2 GB).
Imported by tests/conftest.py so every package's tests share the one server.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nlu import artifacts

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 240.0


def _status(url: str) -> dict[str, object] | None:
    try:
        response = httpx.get(f"{url}/status", timeout=2.0)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def rasa_model() -> Path:
    cache = Path(os.environ.get("CARELOOP_CACHE", artifacts.DEFAULT_CACHE))
    model = artifacts.model_path(cache)
    if not model.exists() or not (artifacts.venv_dir(cache) / ".ready").exists():
        pytest.fail(f"no Rasa model for the current training data at {model}: run `make nlu`")
    return model


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every worker of this run sees: under pytest-xdist each worker's base temp dir is a
    child of the run's own; run serially, the base temp dir is the run's."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[dict[str, object]]:
    """The shared server's record ({"url", "pid", "users"}), read and written under an exclusive lock."""
    with (path.with_suffix(".lock")).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = json.loads(path.read_text()) if path.exists() else {}
        yield record
        path.write_text(json.dumps(record))


def _start(rasa_model: Path, log: Path) -> tuple[str, int]:
    venv = artifacts.venv_dir(Path(os.environ.get("CARELOOP_CACHE", artifacts.DEFAULT_CACHE)))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    command = [str(venv / "bin" / "rasa"), "run", "--enable-api", "-m", str(rasa_model)]
    command += ["--port", str(port), "-i", "127.0.0.1"]
    # Its own session: the worker that starts it may finish before the others stop using it.
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT
    while _status(url) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process.pid)
            pytest.fail(f"Rasa did not start on {url}:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(1.0)
    return url, process.pid


def _running(pid: int) -> bool:
    """Alive and not a zombie: a server another worker started stays a zombie, unreaped, until that
    worker ends, so /proc alone would make the last worker wait out the whole grace period."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def _stop(pid: int) -> None:
    """SIGTERM, then SIGKILL after 30 s; the process may be another worker's child, so poll, not wait."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _running(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        time.sleep(0.2)
    if _running(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # our own child: reap it


@pytest.fixture(scope="session")
def rasa_url(rasa_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the whole run, shared by the xdist workers: the first to need it starts it (under a
    file lock the others wait on), each counts itself in, and the last one out stops it."""
    default = "http://127.0.0.1:5005"
    status = _status(default)
    if status is not None and Path(str(status.get("model_file", ""))).name == rasa_model.name:
        yield default
        return
    record_path = _shared_dir(tmp_path_factory) / "rasa-server.json"
    with _locked(record_path) as record:
        if not record or _status(str(record["url"])) is None:
            url, pid = _start(rasa_model, record_path.with_suffix(".log"))
            record.update(url=url, pid=pid, users=0)
        record["users"] = int(str(record["users"])) + 1
        url = str(record["url"])
    try:
        yield url
    finally:
        with _locked(record_path) as record:
            record["users"] = int(str(record["users"])) - 1
            if record["users"] == 0:
                _stop(int(str(record.pop("pid"))))
                record.clear()
