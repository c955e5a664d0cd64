"""The real Rasa server for the tests that need one: started once per session from `make nlu`'s model.

`rasa_url` reuses a server on 127.0.0.1:5005 when it serves the model `make nlu` built for the
current data; otherwise it starts `rasa run` from the cached venv and model on a free port, waits
for /status (about 25-45 s) and stops it when the session ends. Only tests that ask for it pay that.
Imported by tests/conftest.py so every package's tests share the one server.
"""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def rasa_url(rasa_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    default = "http://127.0.0.1:5005"
    status = _status(default)
    if status is not None and Path(str(status.get("model_file", ""))).name == rasa_model.name:
        yield default
        return
    venv = artifacts.venv_dir(Path(os.environ.get("CARELOOP_CACHE", artifacts.DEFAULT_CACHE)))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("rasa") / "rasa.log"
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    command = [str(venv / "bin" / "rasa"), "run", "--enable-api", "-m", str(rasa_model)]
    command += ["--port", str(port), "-i", "127.0.0.1"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while _status(url) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Rasa did not start on {url}:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(1.0)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
