"""Test fixtures: real SQLite and PostgreSQL databases (each database test runs on both), a client.

The suite runs in parallel (pytest-xdist, `make test`): each worker has its own PostgreSQL database,
SQLite files, Redis database number and files under its own temp dir; the Rasa server is shared
(tests/rasa_fixtures.py)."""

from __future__ import annotations

import base64
import os
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

# Fixed test keys, set before any settings are read; the developer's var/careloop.env is ignored.
os.environ.update(
    CARELOOP_ENV="test",
    CARELOOP_ENV_FILE="/nonexistent/careloop.env",
    CARELOOP_SECRET_KEY="test-secret-key-" + "x" * 32,
    CARELOOP_DATA_KEY=base64.b64encode(bytes(range(32))).decode(),
)
os.environ.pop("REDIS_URL", None)
os.environ.pop("DATABASE_URL", None)
# Redis tests use database 1 + the worker's number (gw0 -> 1, gw1 -> 2; 1 run serially), so two workers
# never see each other's queues, schedulers or keys, and a developer's database 0 is left alone.
# A database number given in CARELOOP_TEST_REDIS is replaced by the worker's.
os.environ["CARELOOP_TEST_REDIS"] = "{}/{}".format(
    re.sub(r"/\d*$", "", os.environ.get("CARELOOP_TEST_REDIS", "redis://127.0.0.1:6379")),
    1 + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")),
)

from backend.app import db as db_module
from backend.app import settings
from backend.app.migrate import upgrade
from backend.content.catalogue import clear_cache as clear_text_revisions
from backend.content.flow_library import clear_cache as clear_flow_revisions
from backend.content.safety_lexicon import reset as reset_site_lexicon
from backend.content.studio import clear_cache as clear_studio_history
from backend.dialogue.content import load_catalog, load_flow
from backend.dialogue.understanding import reset_nlu
from backend.outbox.providers import reset_senders
from backend.security import crypto
from backend.security.permissions import seed_builtin_roles
from backend.web.studio_flows import clear_cache as clear_flow_graphs
from tests.rasa_fixtures import rasa_model, rasa_url  # noqa: F401  (shared session fixtures)

# Each part of the product keeps its tests to a few minutes of test time (large volumes go to bench/); the
# time per part is printed after every run, with the parts over this budget named.
PART_BUDGET_SECONDS = 5 * 60
_part_seconds: Counter[str] = Counter()


def _part(nodeid: str) -> str:
    """tests/backend/<part>/… and tests/<package>/…, the layout the tests mirror."""
    folders = nodeid.split("::")[0].split("/")[1:-1]
    return "/".join(folders[:2] if folders[:1] == ["backend"] else folders[:1]) or "tests"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _part_seconds[_part(report.nodeid)] += report.duration  # setup, call and teardown


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _part_seconds:
        return
    terminalreporter.write_sep("=", f"test time by part (budget {PART_BUDGET_SECONDS // 60} min each)")
    for part, seconds in _part_seconds.most_common():
        over = "  over budget: move volume to bench/" if seconds > PART_BUDGET_SECONDS else ""
        terminalreporter.write_line(f"{seconds / 60:6.1f} min  {part}{over}")


PG_ADMIN_URL = os.environ.get("CARELOOP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def reset_caches() -> None:
    db_module.dispose_engines()
    settings.get_settings.cache_clear()
    crypto.cipher_for.cache_clear()
    load_catalog.cache_clear()
    clear_text_revisions()
    clear_flow_revisions()
    clear_studio_history()
    clear_flow_graphs()
    reset_site_lexicon()
    load_flow.cache_clear()
    reset_senders()
    reset_nlu()


@pytest.fixture(scope="session", autouse=True)
def _own_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Media, synthesised prompts and import files in this worker's temp dir, not the checkout's var/
    (shared by the workers and by a developer's `make run`). Tests that care set their own with
    monkeypatch."""
    base = tmp_path_factory.mktemp("var")
    names = (
        "CARELOOP_MEDIA_DIR",
        "CARELOOP_VOICE_PROMPT_CACHE",
        "CARELOOP_IMPORT_DIR",
        "CARELOOP_DATA_EXPORT_DIR",
        "CARELOOP_TOMBSTONE_FILE",
    )
    saved = {name: os.environ.get(name) for name in names}
    os.environ["CARELOOP_MEDIA_DIR"] = str(base / "media")
    os.environ["CARELOOP_IMPORT_DIR"] = str(base / "imports")
    os.environ["CARELOOP_DATA_EXPORT_DIR"] = str(base / "exports")
    os.environ["CARELOOP_TOMBSTONE_FILE"] = str(base / "tombstones.jsonl")
    os.environ["CARELOOP_VOICE_PROMPT_CACHE"] = str(base / "voice-prompts")
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"careloop_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    reset_caches()
    if url in _PG_ENGINES:
        _PG_ENGINES.pop(url).dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_PG_ENGINES: dict[str, sa.Engine] = {}
_SEQUENCES = (
    "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'S' AND n.nspname = 'public'"
)


def _truncate_postgres(url: str) -> None:
    """Empty every table and restart the id sequences between tests. DELETE with the foreign-key
    triggers off (session_replication_role, as the tests' superuser) rather than one TRUNCATE of all
    tables, which rewrites every table's files: ~0.6 s a test against a few milliseconds."""
    engine = _PG_ENGINES.get(url)
    if engine is None:
        engine = _PG_ENGINES[url] = sa.create_engine(url)
    with engine.begin() as conn:
        tables = conn.scalars(
            sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"
            )
        ).all()
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        for table in tables:
            conn.execute(sa.delete(sa.table(table)))
        conn.execute(sa.text(_SEQUENCES))
        seed_builtin_roles(conn)  # the migration's rows, as a freshly migrated database has them


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A migrated, empty database: a copy of the SQLite template, or the PostgreSQL one truncated."""
    if request.param == "sqlite":
        path = tmp_path / "careloop.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
        _truncate_postgres(url)
    monkeypatch.setenv("DATABASE_URL", url)
    reset_caches()
    yield url
    reset_caches()


@pytest.fixture
def db(database_url: str) -> Iterator[sa.orm.Session]:
    """The test's own view of the database. On SQLite its reads autocommit, so it never holds the
    write lock while the app under test works, and always sees what the app committed."""
    engine = db_module.make_engine(database_url, sqlite_write_lock=False)
    session = sa.orm.Session(bind=engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        engine.dispose()


@pytest.fixture
def client(database_url: str) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from backend.web.app import create_app

    with TestClient(create_app(), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A caller's voice: espeak-ng speaking test answers (the voice engine tests and the calls' callers)."""
    from voice_ai.tts import EspeakSynthesizer

    return EspeakSynthesizer(tmp_path_factory.mktemp("caller-voice"), engine="cli")


@pytest.fixture
def no_quiet_hours(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No quiet time, whatever the hour of the run: messages go out at once."""
    monkeypatch.setenv("CARELOOP_QUIET_HOURS_START", "0")
    monkeypatch.setenv("CARELOOP_QUIET_HOURS_END", "0")
    reset_caches()


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """The SQL statements every engine runs while the test does (for query-count tests)."""
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    yield seen
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
