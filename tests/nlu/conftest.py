"""Fixtures for the Rasa tests: one real Rasa server per session, and a TCP relay that can be cut.

`rasa_url` reuses a server on 127.0.0.1:5005 when it serves the model `make nlu` built for the
current data; otherwise it starts `rasa run` from the cached venv and model on a free port, waits
for /status (about 45 s) and stops it when the session ends. Only tests that ask for it pay that.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nlu import artifacts

ROOT = Path(__file__).resolve().parents[2]
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


class Relay:
    """A TCP relay from a local port to the Rasa server: `stop()` is the server going away (listener
    and live connections closed), `start()` brings it back on the same port. Counts parse requests."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.parse_requests = 0
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would leave it listening
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._connections += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, to_server: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if to_server:
                    with self._lock:
                        self.parse_requests += chunk.count(b"POST /model/parse")
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def relay(rasa_url: str) -> Iterator[Relay]:
    relay = Relay(int(rasa_url.rsplit(":", 1)[1]))
    relay.start()
    yield relay
    relay.stop()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) but never answers: a hung Rasa."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
