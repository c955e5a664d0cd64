"""What a restore refuses, and that each refusal leaves the target as it found it: a corrupted, truncated
or foreign file, a wrong key, a newer schema, a target database or media folder that is not empty, a
different field-encryption key. An older schema is restored and then upgraded."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from pydantic import SecretStr

from backend.app.migrate import alembic_config, upgrade
from backend.app.settings import Settings
from backend.backup.errors import BackupError, DamagedArchive, NewerSchema, TargetNotEmpty, WrongKey
from backend.backup.service import check_archive, make_backup, restore_backup
from backend.models import Department
from tests.backend.backup.conftest import BACKUP_KEY, fresh_target


def tables_in(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()


def assert_untouched(target: Settings) -> None:
    """Nothing was created: no table in the target database, no media folder, no staging left behind."""
    assert tables_in(target.database_url) == []
    assert not target.media_dir.exists()
    assert not list(target.media_dir.parent.glob(f".{target.media_dir.name}.restoring"))


@pytest.fixture
def archive(source: Settings, tmp_path: Path) -> Path:
    path = tmp_path / "careloop.backup"
    (source.media_dir / "x.bin").parent.mkdir(parents=True, exist_ok=True)
    (source.media_dir / "x.bin").write_bytes(b"sealed media")
    make_backup(source, path, BACKUP_KEY)
    return path


def test_damaged_files_and_wrong_keys_are_refused_before_anything_changes(
    archive: Path, target: Settings, tmp_path: Path
) -> None:
    whole = archive.read_bytes()
    cases: list[tuple[str, bytes, bytes, type[BackupError], str]] = [
        (
            "flipped",
            whole[:2000] + bytes([whole[2000] ^ 1]) + whole[2001:],
            BACKUP_KEY,
            DamagedArchive,
            "corrupted",
        ),
        ("cut-mid-chunk", whole[:-100], BACKUP_KEY, DamagedArchive, "truncated"),
        ("cut-to-header", whole[:40], BACKUP_KEY, DamagedArchive, "truncated"),
        ("extra-bytes", whole + b"\0", BACKUP_KEY, DamagedArchive, "follow its last chunk"),
        ("foreign", b"PGDMP" + os.urandom(500), BACKUP_KEY, DamagedArchive, "not a CareLoop backup"),
        ("wrong-key", whole, os.urandom(32), WrongKey, "sealed with backup key"),
    ]
    for name, content, key, error, words in cases:
        damaged = tmp_path / f"{name}.backup"
        damaged.write_bytes(content)
        with pytest.raises(error, match=words):
            restore_backup(target, damaged, key)
        assert_untouched(target)
        # the checking step alone says the same
        with pytest.raises(error):
            check_archive(damaged, key, target.database_url)
    # and the undamaged archive still restores into the same target
    restore_backup(target, archive, BACKUP_KEY)
    assert "patients" in tables_in(target.database_url)
    assert (target.media_dir / "x.bin").read_bytes() == b"sealed media"


def test_a_newer_schema_is_refused(source: Settings, tmp_path: Path) -> None:
    engine = sa.create_engine(source.database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        current = conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    path = tmp_path / "newer.backup"
    try:
        assert make_backup(source, path, BACKUP_KEY).schema_revision == "9999_from_the_future"
    finally:  # the PostgreSQL test database is shared by the tests that follow
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": current})
        engine.dispose()
    for target in fresh_target(source, tmp_path):
        with pytest.raises(NewerSchema, match="unknown to this CareLoop"):
            restore_backup(target, path, BACKUP_KEY)
        assert_untouched(target)


def test_a_target_that_is_not_empty_is_refused_and_kept(archive: Path, target: Settings) -> None:
    upgrade(target.database_url)
    engine = sa.create_engine(target.database_url, poolclass=sa.pool.NullPool)
    with sa.orm.Session(engine) as session:
        session.add(Department(code="KEEP", name="Kept", names={}))
        session.commit()
    with pytest.raises(TargetNotEmpty, match="not empty"):
        restore_backup(target, archive, BACKUP_KEY)
    with sa.orm.Session(engine) as session:
        # the target's own data is as it was: one department, no patients
        assert session.scalars(sa.select(Department.code)).all() == ["KEEP"]
        assert session.scalar(sa.text("SELECT count(*) FROM patients")) == 0
    engine.dispose()
    assert not target.media_dir.exists()


@pytest.mark.parametrize(("setting", "named"), [("media_dir", "media"), ("import_dir", "import")])
def test_a_file_folder_that_is_not_empty_is_refused_before_anything_is_unpacked(
    archive: Path, target: Settings, setting: str, named: str
) -> None:
    folder: Path = getattr(target, setting)
    folder.mkdir()
    (folder / "someone-elses.bin").write_bytes(b"kept")
    with pytest.raises(TargetNotEmpty, match=f"{named} folder"):
        restore_backup(target, archive, BACKUP_KEY)
    assert tables_in(target.database_url) == []
    assert [p.name for p in folder.iterdir()] == ["someone-elses.bin"]
    # the other folders were not made, and no staging folder is left
    for other in ("media_dir", "import_dir", "data_export_dir"):
        place: Path = getattr(target, other)
        assert other == setting or not place.exists()
        assert not list(place.parent.glob(f".{place.name}.restoring"))


def test_another_data_key_is_refused_unless_asked_for(archive: Path, target: Settings) -> None:
    other = target.model_copy(update={"data_key": SecretStr(base64.b64encode(os.urandom(32)).decode())})
    with pytest.raises(BackupError, match="data key"):
        restore_backup(other, archive, BACKUP_KEY)
    assert_untouched(other)
    restore_backup(other, archive, BACKUP_KEY, other_data_key=True)
    assert "patients" in tables_in(other.database_url)


def test_an_older_schema_is_restored_then_upgraded(source: Settings, tmp_path: Path) -> None:
    if not source.is_sqlite:
        pytest.skip("the upgrade path is the same on PostgreSQL; one database kind is enough here")
    old = source.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'old.db'}"})
    command.upgrade(alembic_config(old.database_url), "0025")
    path = tmp_path / "old.backup"
    assert make_backup(old, path, BACKUP_KEY, media=False).schema_revision == "0025"
    for target in fresh_target(source, tmp_path):
        restore_backup(target, path, BACKUP_KEY)
        engine = sa.create_engine(target.database_url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            revision = conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
        assert revision == ScriptDirectory.from_config(alembic_config(old.database_url)).get_current_head()
        engine.dispose()


def test_the_data_key_is_refused_as_a_backup_key(source: Settings, tmp_path: Path) -> None:
    path = tmp_path / "same-key.backup"
    with pytest.raises(BackupError, match="must differ"):
        make_backup(source, path, source.data_key_bytes)
    # nothing written: no archive, no half-written file, no work folder
    assert not path.exists() and not list(tmp_path.glob(".*"))
