"""The restore drill: a populated instance (demo data, media files, audit rows) is backed up, restored into
a fresh database and media folder (SQLite to SQLite, PostgreSQL to PostgreSQL with the real pg_dump and
pg_restore), and every table's rows, a decrypted sample of every encrypted column, the media files, the
import files and data exports, and the audit chain are compared with the original."""

from __future__ import annotations

import base64
from pathlib import Path

import sqlalchemy as sa

from backend.app.settings import Settings
from backend.backup.service import make_backup, restore_backup
from backend.imports.reconcile import report_kind
from backend.messaging.media import seal_to_file, unseal_file
from backend.models import Base
from backend.models.base import EncryptedText
from backend.privacy.export import seal_kind
from backend.security.audit_verify import verify_chain
from backend.security.crypto import current_cipher, key_fingerprint
from tests.backend.backup.conftest import BACKUP_KEY


def table_rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows as stored (ciphertexts included), in primary-key order."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    found = {}
    try:
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                raw = sa.table(table.name, *(sa.column(column.name) for column in table.columns))
                order = [raw.c[column.name] for column in table.primary_key.columns]
                found[table.name] = [tuple(row) for row in conn.execute(sa.select(raw).order_by(*order))]
            found["alembic_version"] = [
                tuple(row) for row in conn.execute(sa.text("SELECT * FROM alembic_version"))
            ]
    finally:
        engine.dispose()
    return found


def decrypted_sample(url: str) -> dict[str, list[object]]:
    """Up to five decrypted values of every encrypted column (read through the column's own type)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    sample: dict[str, list[object]] = {}
    try:
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                for column in table.columns:
                    if isinstance(column.type, EncryptedText):
                        query = (
                            sa.select(column).where(column.is_not(None)).order_by(*table.primary_key.columns)
                        )
                        sample[f"{table.name}.{column.name}"] = list(conn.scalars(query.limit(5)))
    finally:
        engine.dispose()
    return sample


FOLDERS = ("media_dir", "import_dir", "data_export_dir")


def folder_files(settings: Settings) -> dict[str, dict[str, bytes]]:
    """Every file of the media, import and export folders, by its path inside its folder."""
    found: dict[str, dict[str, bytes]] = {}
    for name in FOLDERS:
        root: Path = getattr(settings, name)
        found[name] = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    return found


def fill_file_stores(settings: Settings) -> None:
    """An import's upload and plan (the hospital's originals, plain) and its sealed reconciliation
    report, and a patient's sealed data export: the files no row names."""
    cipher = current_cipher()
    imports, exports = settings.import_dir, settings.data_export_dir
    imports.mkdir(parents=True, exist_ok=True)
    exports.mkdir(parents=True, exist_ok=True)
    (imports / f"{'ab' * 32}.upload").write_bytes(b"mrn,name\nM1,Le Van An\n")
    (imports / "plan-3.tsv").write_bytes(b"1\tcreate\n")
    (imports / "reconciliation-3.xlsx").write_bytes(cipher.seal(report_kind(3), b"PK a workbook"))
    (imports / "half-written.part").write_bytes(b"an upload still arriving")
    (exports / "export-4.json.sealed").write_bytes(cipher.seal(seal_kind(4, "json"), b'{"a": 1}'))


def test_a_backup_restores_into_a_fresh_database_as_it_was(
    seeded_source: Settings, seeded_target: Settings, tmp_path: Path
) -> None:
    source, target = seeded_source, seeded_target
    media_name = seal_to_file(source, "media:1", b"\x89PNG a patient's photo")
    fill_file_stores(source)
    archive = tmp_path / "careloop.backup"

    manifest = make_backup(source, archive, BACKUP_KEY)

    # the manifest describes what was dumped; the archive holds neither key nor plain text
    assert manifest.database == ("sqlite" if source.is_sqlite else "postgresql")
    assert manifest.tables["patients"] == 12 and manifest.media_files == 1
    assert manifest.files == {"media.tar": 1, "imports.tar": 3, "exports.tar": 1}  # not the .part
    assert manifest.data_key_id == key_fingerprint(source.data_key_bytes)
    sealed = archive.read_bytes()
    assert source.data_key_bytes not in sealed and base64.b64encode(source.data_key_bytes) not in sealed
    assert b"patients" not in sealed and b"alembic_version" not in sealed

    restore_backup(target, archive, BACKUP_KEY)

    before, after = table_rows(source.database_url), table_rows(target.database_url)
    assert before.keys() == after.keys()
    for name in before:
        assert after[name] == before[name], name
    assert sum(len(rows) for rows in after.values()) > 100  # the drill compared a populated instance
    sample_before, sample_after = decrypted_sample(source.database_url), decrypted_sample(target.database_url)
    assert sample_after == sample_before
    assert len(sample_after["patients.mrn"]) == 5 and all(
        isinstance(value, str) and not value.startswith("v1:") for value in sample_after["patients.mrn"]
    )
    # media come back sealed as they were, and open with the same data key
    assert unseal_file(target, "media:1", media_name) == b"\x89PNG a patient's photo"
    # so do the import files and the data export, byte for byte, and the sealed ones open
    expected = folder_files(source)
    del expected["import_dir"]["half-written.part"]
    assert folder_files(target) == expected
    report = (target.import_dir / "reconciliation-3.xlsx").read_bytes()
    assert current_cipher().unseal(report_kind(3), report) == b"PK a workbook"
    bundle = (target.data_export_dir / "export-4.json.sealed").read_bytes()
    assert current_cipher().unseal(seal_kind(4, "json"), bundle) == b'{"a": 1}'
    # and the audit chain, copied whole, still verifies in the restored database
    engine = sa.create_engine(target.database_url, poolclass=sa.pool.NullPool)
    with sa.orm.Session(engine) as session:
        verdict = verify_chain(session, source.audit_key_bytes)
    engine.dispose()
    # the row the sealer had not reached is still pending, to be sealed by the restored instance's sealer
    assert verdict.ok and verdict.checked >= 3 and verdict.pending == 1
