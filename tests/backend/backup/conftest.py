"""A populated instance to back up, and fresh targets to restore into (same kind of database)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from backend.app.db import session_scope
from backend.app.settings import Settings, get_settings
from backend.demo.seed import seed
from backend.security.audit_chain import run_sealer
from backend.services import audit
from tests import factories
from tests.conftest import PG_ADMIN_URL

BACKUP_KEY = os.urandom(32)


def _instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CARELOOP_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("CARELOOP_IMPORT_DIR", str(tmp_path / "imports"))
    monkeypatch.setenv("CARELOOP_DATA_EXPORT_DIR", str(tmp_path / "exports"))
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
def source(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A small instance (two patients with visits, audit rows): enough for the refusals and the command."""
    settings = _instance(tmp_path, monkeypatch)
    with session_scope() as session:
        dept = factories.department(session)
        for _ in range(2):
            person = factories.patient(session, dept=dept)
            audit.record(session, "patient.view", patient_id=person.id, screen="record")
    return settings


@pytest.fixture
def seeded_source(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A populated instance: the demo seeder's departments, staff and patients, and audit rows."""
    settings = _instance(tmp_path, monkeypatch)
    with session_scope() as session:
        seed(session, patients=12)
        for n in range(3):
            audit.record(session, "patient.view", patient_id=n + 1, screen="record")
    run_sealer()  # as the periodic job does; then one row still waiting for it when the backup is taken
    with session_scope() as session:
        audit.record(session, "patient.view", patient_id=1, screen="record")
    return settings


def fresh_target(source: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a new, empty database and file folders of the same kind as the source's."""
    folders = {
        "media_dir": tmp_path / "restored-media",
        "import_dir": tmp_path / "restored-imports",
        "data_export_dir": tmp_path / "restored-exports",
    }
    if source.is_sqlite:
        yield source.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'restored.db'}", **folders})
        return
    name = f"careloop_restore_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield source.model_copy(update={"database_url": url, **folders})
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def target(source: Settings, tmp_path: Path) -> Iterator[Settings]:
    yield from fresh_target(source, tmp_path)


@pytest.fixture
def seeded_target(seeded_source: Settings, tmp_path: Path) -> Iterator[Settings]:
    yield from fresh_target(seeded_source, tmp_path)
