"""What every bench shares: a scratch PostgreSQL database (created on 127.0.0.1:5432, dropped at the end),
the server's environment, `careloop` commands, `careloop serve` on a free loopback port, a small
keep-alive HTTP client, CPU accounting from /proc, percentiles, and the JSON line each run ends with.

Run as scripts, the benches put the repository first on the import path and import this as
`bench.harness`; nothing here is a bench's private helper.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
PG_HOST, PG_PORT, PG_USER = HOST, 5432, "postgres"
REPO_ROOT = Path(__file__).resolve().parent.parent


def report(figures: dict[str, Any]) -> None:
    """The last line of every bench's output: its figures as one JSON object."""
    print(json.dumps(figures), flush=True)


def percentile(sorted_values: list[int], pct: float) -> float:
    """The nearest-rank percentile of nanosecond values, in milliseconds."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, math.ceil(pct / 100 * len(sorted_values)) - 1))  # nearest rank
    return sorted_values[rank] / 1e6


# --------------------------------------------------------------------------- databases


def pg_connect(dbname: str = "postgres") -> Any:
    """An autocommit psycopg connection to `dbname` as the bench's superuser."""
    import psycopg

    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, autocommit=True, connect_timeout=10
    )


@contextlib.contextmanager
def postgres_database() -> Iterator[tuple[str, str]]:
    """A fresh database; yields (DATABASE_URL, name) and drops it afterwards (also when the run fails)."""
    name = f"careloop_bench_{secrets.token_hex(4)}"
    with pg_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}", name
    finally:
        with pg_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def migrated_database(env_for: Callable[[str], dict[str, str]]) -> Iterator[str]:
    """postgres_database, migrated by `careloop migrate` run with env_for(url); yields the URL."""
    with postgres_database() as (url, _name):
        subprocess.run(
            [sys.executable, "-m", "backend.app.cli", "migrate"],
            cwd=REPO_ROOT,
            env=env_for(url),
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield url


# --------------------------------------------------------------------------- environment and commands


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def base_env() -> dict[str, str]:
    """The server's environment: this one's without CARELOOP_*/REDIS_URL, fresh keys, no env file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARELOOP_") and k != "REDIS_URL"}
    env.update(
        CARELOOP_ENV="development",
        # a path that does not exist, so a developer's var/careloop.env is not read
        CARELOOP_ENV_FILE=str(Path(tempfile.gettempdir()) / f"careloop-bench-{secrets.token_hex(6)}.env"),
        CARELOOP_SECRET_KEY=secrets.token_urlsafe(48),
        CARELOOP_DATA_KEY=base64.b64encode(os.urandom(32)).decode(),
        CARELOOP_PUBLIC_URL=f"http://{HOST}",
        # every simulated patient posts from 127.0.0.1: only the per-link limits apply
        CARELOOP_PATIENT_ADDRESS_LIMIT_SCALE="0",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
    )
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> None:
    """`careloop <args>` in a subprocess; its output is shown only when it fails."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "backend.app.cli", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"careloop {' '.join(args)} failed ({done.returncode}):\n"
                           f"{done.stdout}\n{done.stderr}")
    print(f"  careloop {' '.join(args)}: {time.perf_counter() - started:.1f} s", flush=True)


def fixed_env(url: str) -> dict[str, str]:
    """This environment with DATABASE_URL and fixed keys, for benches that write rows themselves."""
    return {
        **os.environ,
        "DATABASE_URL": url,
        "CARELOOP_ENV_FILE": "/nonexistent/careloop.env",
        "CARELOOP_SECRET_KEY": "bench-secret-" + "x" * 40,
        "CARELOOP_DATA_KEY": base64.b64encode(bytes(32)).decode(),
        "PYTHONPATH": str(REPO_ROOT),
    }


@contextlib.contextmanager
def server(
    env: dict[str, str], workers: int | None = None, *, port: int | None = None, prefix: Sequence[str] = ()
) -> Iterator[tuple[int, int]]:
    """`careloop serve` on a free loopback port (or `port`), run under `prefix` (e.g. taskset): yields
    (port, process group id) once /healthz answers; the group is ended after."""
    port = port or free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115  (closed below)
    command = [*prefix, sys.executable, "-m", "backend.app.cli", "serve", "--host", HOST, "--port", str(port)]
    proc = subprocess.Popen(
        command + (["--workers", str(workers)] if workers else []),
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    failed = True
    try:
        _wait_healthy(proc, port, log)
        yield port, proc.pid
        failed = False
    finally:
        stop(proc)
        log.seek(0)
        lines = log.read().decode("utf-8", "replace").splitlines()
        log.close()
        problems = [i for i, line in enumerate(lines) if "ERROR" in line or line.startswith("Traceback")]
        if problems:
            first = lines[problems[0] : problems[0] + 40]
            print(f"  server log has {len(problems)} errors/tracebacks; the first:\n    " + "\n    ".join(first),
                  flush=True)
        if failed and lines:
            print("  server log (last 40 lines):\n    " + "\n    ".join(lines[-40:]), flush=True)


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Any) -> None:
    for _ in range(300):  # up to 30 s
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read().decode('utf-8', 'replace')}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not answer /healthz within 30 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # worker processes left behind, if any
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def proc_cpu(pid: int) -> tuple[str, int, float]:
    """(command name, process group, user+system CPU seconds) of a process, from /proc (Linux)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, int(fields[2]), (int(fields[11]) + int(fields[12])) / _TICKS


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100



# --------------------------------------------------------------------------- HTTP client


class HttpError(Exception):
    """A response we did not expect (status, framing, body)."""


class Connection:
    """One keep-alive HTTP/1.1 connection to the server under test; requests go one at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        return self._reader, self._writer

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def request(self, method: str, path: str, body: bytes = b"",
                      content_type: str = "application/x-www-form-urlencoded",
                      extra_headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        reader, writer = await self._open()
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
        if method == "POST":
            head += (f"Content-Type: {content_type}\r\nAccept: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n")
        head += "".join(f"{name}: {value}\r\n" for name, value in (extra_headers or {}).items())
        writer.write(head.encode("ascii") + b"\r\n" + body)
        try:
            raw_head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.close()
            raise HttpError(f"connection closed: {exc}") from exc
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            payload = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            payload = b"".join(chunks)
        else:
            raise HttpError(f"response without length: {headers}")
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, payload



# --------------------------------------------------------------------------- CPU and tokens


@dataclass
class CpuSample:
    """CPU seconds used so far by the server's process group, PostgreSQL, this process and the machine."""

    server: float
    postgres: float
    client: float
    machine_busy: float

    @classmethod
    def take(cls, server_pgid: int) -> CpuSample:
        server = postgres = 0.0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                name, pgid, cpu = proc_cpu(int(entry.name))
                if pgid == server_pgid:
                    server += cpu
                elif name == "postgres":
                    postgres += cpu
        busy = 0.0
        with contextlib.suppress(OSError, ValueError, IndexError):
            cpu_line = Path("/proc/stat").read_text().splitlines()[0].split()
            ticks = [int(x) for x in cpu_line[1:9]]
            busy = (sum(ticks) - ticks[3] - ticks[4]) / _TICKS  # all but idle and iowait
        return cls(server, postgres, time.process_time(), busy)

    def percent_since(self, earlier: CpuSample, seconds: float) -> dict[str, float]:
        """Percent of one core, per consumer, over the window; `other` is everything else on the machine."""
        used = {
            "server": self.server - earlier.server,
            "postgres": self.postgres - earlier.postgres,
            "bench_client": self.client - earlier.client,
        }
        used["other"] = max(0.0, self.machine_busy - earlier.machine_busy - sum(used.values()))
        return {k: round(100 * v / seconds) for k, v in used.items()}


def make_tokens(env: dict[str, str], ids: list[int]) -> list[str]:
    """Chat link tokens signed with the server's secret key, made the way the app makes them."""
    os.environ["CARELOOP_ENV_FILE"] = env["CARELOOP_ENV_FILE"]  # read when backend.app.settings is imported
    from pydantic import SecretStr

    from backend.app.settings import Settings
    from backend.messaging.links import LinkKind, make_token

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        secret_key=SecretStr(env["CARELOOP_SECRET_KEY"]),
        data_key=SecretStr(env["CARELOOP_DATA_KEY"]),
    )
    return [make_token(settings, LinkKind.CHAT, pid) for pid in ids]


def encrypted_values() -> dict[str, str]:
    """Tokens for benches that seed rows in SQL: names, diagnoses and message texts are encrypted at rest,
    and SQL cannot encrypt row by row, so one token made by the app's own cipher (under the key of the
    process's environment) serves every row. The benches measure decrypting them, not their variety."""
    from backend.security.crypto import current_cipher

    cipher = current_cipher()
    diagnoses = json.dumps([{"system": "ICD-10", "code": "I10", "text": "hypertension"}])
    return {
        "name_token": cipher.encrypt("patient_name", "Bench Patient"),
        # EncryptedJSON keeps the token as a JSON string in the json column
        "diagnoses_token": json.dumps(cipher.encrypt("diagnoses", diagnoses)),
        "text_token": cipher.encrypt("message_text", "A message about the recovery after discharge"),
    }
