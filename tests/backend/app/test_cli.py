"""The `careloop` command as a person meets it: the venv's script, the hints it prints run as printed, and
links that follow the address served."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from backend.app.serve import public_url_mismatch, served_url
from tests.rasa_fixtures import free_port
from tests.serve_process import ServeProcess, start_command, start_serve

CARELOOP = Path(sys.executable).with_name("careloop")


@pytest.fixture
def own_database(tmp_path: Path, sqlite_template: Path) -> str:
    database = tmp_path / "careloop.db"
    shutil.copy(sqlite_template, database)
    return f"sqlite:///{database}"


def _environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The test's keys (standing in for var/careloop.env) and the given settings; no public URL, no Redis:
    what a person's shell has. PYTHONPATH (set by make) stays, so the code run is this checkout's even
    when another checkout sharing the venv was installed into it last."""
    env = {k: v for k, v in os.environ.items() if k not in {"CARELOOP_PUBLIC_URL", "REDIS_URL"}}
    return {**env, "CARELOOP_ENV_FILE": str(tmp_path / "careloop.env"), **settings}


def _shell(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A printed command line, run as a person pastes it: by the shell, somewhere else than the checkout."""
    return subprocess.run(  # noqa: S602  (the point is to run the line exactly as printed)
        command, shell=True, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _printed(proc: ServeProcess, label: str) -> str:
    found = re.search(rf"{re.escape(label)}\s*(\S.*)", proc.output())
    assert found, proc.output()
    return found.group(1).strip()


def test_the_venv_has_a_careloop_command_that_runs_without_the_checkout_on_the_path(tmp_path: Path) -> None:
    assert CARELOOP.exists(), f"{CARELOOP} is missing: `make venv` installs the checkout into the venv"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    shown = subprocess.run(
        [str(CARELOOP), "--help"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0 and "chat-link" in shown.stdout, shown.stderr


def test_the_admin_code_hint_runs_as_printed(tmp_path: Path, own_database: str) -> None:
    env = _environment(tmp_path, DATABASE_URL=own_database)
    seeded = subprocess.run(
        [str(CARELOOP), "demo", "--patients", "2"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    hint = re.search(r"current admin code: (.+)", seeded.stdout)
    assert hint, seeded.stdout
    # The person's shell does not have the DATABASE_URL that `make run DATABASE_URL=...` was given.
    del env["DATABASE_URL"]
    code = _shell(hint.group(1), env, tmp_path)
    assert code.returncode == 0, code.stderr
    assert re.fullmatch(r"\d{6}\n", code.stdout)


def test_links_follow_the_port_served_and_the_printed_chat_link_opens_a_chat(
    tmp_path: Path, own_database: str
) -> None:
    port = free_port()
    env = _environment(tmp_path, DATABASE_URL=own_database)
    command = [str(CARELOOP), "run", "--port", str(port), "--patients", "3"]
    proc = start_command(command, env, port, cwd=tmp_path)
    try:
        assert _printed(proc, "public URL used in links:") == f"http://127.0.0.1:{port}"
        link = _printed(proc, "patient chat:")
        assert link.startswith(f"http://127.0.0.1:{port}/c/")
        page = httpx.get(link, timeout=10)
        assert page.status_code == 200 and "<form" in page.text
        sent = httpx.post(
            f"{link}/messages",
            data={"text": "hello", "client_id": "printed-link-1"},
            headers={"Accept": "application/json"},
            timeout=30,
        )
        assert sent.status_code == 200 and sent.json()["duplicate"] is False
        replies = httpx.get(f"{link}/messages", headers={"Accept": "application/json"}, timeout=10).json()
        assert any(not item["mine"] for item in replies["items"]), replies  # the bot answered

        shell = {k: v for k, v in env.items() if k != "DATABASE_URL"}
        other = _shell(_printed(proc, "another patient's chat link:"), shell, tmp_path)
        assert other.returncode == 0, other.stderr
        assert other.stdout.startswith(f"http://127.0.0.1:{port}/c/")
        assert httpx.get(other.stdout.strip(), timeout=10).status_code == 200
        assert "warning" not in proc.output()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_an_explicit_public_url_on_another_port_is_warned_once_at_start(
    tmp_path: Path, own_database: str
) -> None:
    port = free_port()
    env = _environment(tmp_path, DATABASE_URL=own_database, CARELOOP_PUBLIC_URL="http://127.0.0.1:8000")
    proc = start_serve(env, port)
    try:
        assert proc.output().count("warning: CARELOOP_PUBLIC_URL is http://127.0.0.1:8000") == 1
        assert f"listens on http://127.0.0.1:{port}" in proc.output()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.mark.parametrize(
    ("public_url", "host", "port", "warned"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1", 8000, False),
        ("http://localhost:8000", "0.0.0.0", 8301, True),  # noqa: S104
        ("http://10.0.0.5:8000", "10.0.0.5", 8301, True),
        ("https://followup.hospital.example", "127.0.0.1", 8000, False),  # a reverse proxy's address
        ("https://127.0.0.1", "127.0.0.1", 443, False),
    ],
)
def test_only_a_public_url_naming_this_machine_on_another_port_is_a_mismatch(
    public_url: str, host: str, port: int, warned: bool
) -> None:
    assert (public_url_mismatch(public_url, host, port) is not None) is warned


def test_links_served_on_every_interface_use_the_loopback_address() -> None:
    assert served_url("0.0.0.0", 8301) == "http://127.0.0.1:8301"  # noqa: S104
    assert served_url("::1", 8301) == "http://[::1]:8301"
