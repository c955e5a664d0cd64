"""Making a backup archive and restoring one: the steps, in the order that keeps a failure harmless.

A backup writes the database dump and a tar of the media folder into a private working folder beside
the archive, describes them in the manifest, bundles the three in a tar and seals it (backup/sealed.py)
under a temporary name, renamed into place once whole. A restore opens and checks everything first
(every chunk's tag, the manifest, every part's SHA-256, the schema revision, the field-encryption key,
that the target database and media folder are empty) and only then loads the database and moves the
media folder into place. Field-encryption keys are never written into an archive: the manifest names
the data key by its fingerprint only.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from backend.app.migrate import alembic_config, upgrade
from backend.app.settings import Settings
from backend.backup import databases
from backend.backup.errors import BackupError, DamagedArchive, TargetNotEmpty
from backend.backup.manifest import NAME, Manifest, check_parts, check_schema, describe
from backend.backup.sealed import seal_file, unseal_file
from backend.models.base import utcnow
from backend.security.crypto import key_fingerprint

MEDIA = "media.tar"
Say = Callable[[str], None]


@dataclass(frozen=True)
class Folder:
    """A folder of files the archive carries as a tar part of its own."""

    part: str
    setting: str  # the Settings attribute naming the folder
    what: str  # for the messages


# Media and case evidence (sealed, named by rows), import uploads, plans and sealed reconciliation
# reports, and patients' sealed data exports: a restored instance has every file its rows and jobs name.
FOLDERS = (
    Folder(MEDIA, "media_dir", "media files (already sealed with the data key)"),
    Folder("imports.tar", "import_dir", "import files (uploads, plans, sealed reports)"),
    Folder("exports.tar", "data_export_dir", "data exports (sealed with the data key)"),
)


def _quiet(_line: str) -> None:
    return None


@contextmanager
def _workspace(near: Path) -> Iterator[Path]:
    """A private folder (0700) next to `near`: dumps are as large as the database, so they go on the
    archive's disk rather than a small /tmp, and are removed whatever happens."""
    try:
        near.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".careloop-backup-", dir=near))
    except OSError as exc:
        raise BackupError(f"cannot make a work folder in {near}: {exc.strerror}") from exc
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _folder_files(folder: Path) -> list[Path]:
    """The folder's files, without the ones being written (an upload's `.part`, a re-seal's `.tmp`)."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not path.name.startswith(".") and path.suffix != ".part"
    )


def make_backup(
    settings: Settings, archive: Path, key: bytes, *, media: bool = True, say: Say = _quiet
) -> Manifest:
    """Write an encrypted archive of the database (and the media folder) to `archive`."""
    if archive.exists():
        raise BackupError(f"{archive} exists; a backup never overwrites a file")
    if key == settings.data_key_bytes:
        raise BackupError("the backup key must differ from CARELOOP_DATA_KEY")
    with _workspace(archive.parent) as work:
        kind = databases.kind_of(settings.database_url)
        say(f"dumping the {kind} database")
        dumped = databases.dump(settings.database_url, work / databases.part_name(kind))
        parts = [databases.part_name(kind)]
        counts: dict[str, int] = {}
        for folder in FOLDERS if media else ():
            root: Path = getattr(settings, folder.setting)
            files = _folder_files(root)
            say(f"adding {len(files)} {folder.what}")
            with tarfile.open(work / folder.part, "w", format=tarfile.PAX_FORMAT) as tar:
                for path in files:
                    tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
            parts.append(folder.part)
            counts[folder.part] = len(files)
        manifest = Manifest(
            created_at=utcnow().isoformat(timespec="seconds"),
            database=kind,
            schema_revision=dumped.revision,
            tables=dumped.rows,
            parts={name: describe(work / name) for name in parts},
            data_key_id=key_fingerprint(settings.data_key_bytes),
            backup_key_id=key_fingerprint(key),
            media_files=counts.get(MEDIA, 0),
            files=counts,
        )
        (work / NAME).write_text(manifest.to_json(), encoding="utf-8")
        bundle = work / "bundle.tar"
        with tarfile.open(bundle, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in (NAME, *parts):
                tar.add(work / name, arcname=name, recursive=False)
        say(f"sealing {bundle.stat().st_size} bytes")
        placing = archive.with_name(f".{archive.name}.writing")
        with placing.open("xb") as out:
            seal_file(key, bundle, out)
        placing.replace(archive)  # never a half-written archive under the final name
    # the manifest beside the archive, for the health page: times, revision, sizes and row counts,
    # no key and nothing about any patient
    sidecar(archive).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def sidecar(archive: Path) -> Path:
    """The archive's manifest kept in the clear beside it (`careloop.backup.manifest.json`)."""
    return archive.with_name(f"{archive.name}.manifest.json")


def newest_backup(folder: Path) -> Manifest | None:
    """The newest manifest beside an archive in `folder` (by its `created_at`), None when there is none.
    A manifest whose archive is gone, or that cannot be read, is not counted."""
    found: list[Manifest] = []
    if folder.is_dir():
        for path in folder.glob("*.manifest.json"):
            archive = path.with_name(path.name.removesuffix(".manifest.json"))
            if not archive.is_file():
                continue
            try:
                found.append(Manifest.from_json(path.read_text(encoding="utf-8")))
            except (BackupError, OSError):
                continue
    return max(found, key=lambda m: m.created_at, default=None)


@dataclass(frozen=True)
class Opened:
    manifest: Manifest
    folder: Path
    head: str


def _open(archive: Path, key: bytes, work: Path, database_url: str) -> Opened:
    """Decrypt, unpack and check an archive into `work`; raises before anything outside `work` changes."""
    if not archive.is_file():
        raise BackupError(f"no archive at {archive}")
    bundle = work / "bundle.tar"
    unseal_file(key, archive, bundle)
    allowed = {
        NAME,
        *(folder.part for folder in FOLDERS),
        databases.part_name(databases.POSTGRES),
        databases.part_name(databases.SQLITE),
    }
    try:
        with tarfile.open(bundle, "r:") as tar:
            members = tar.getmembers()
            names = [member.name for member in members]
            if len(set(names)) != len(names) or not set(names) <= allowed or NAME not in names:
                raise DamagedArchive(f"the archive holds unexpected parts: {sorted(names)}")
            if not all(member.isfile() for member in members):
                raise DamagedArchive("the archive holds something other than plain files")
            tar.extractall(work / "parts", filter="data")
    except tarfile.TarError as exc:
        raise DamagedArchive(f"the archive's contents are unreadable: {exc}") from exc
    bundle.unlink()
    folder = work / "parts"
    manifest = Manifest.from_json((folder / NAME).read_text(encoding="utf-8"))
    if set(manifest.parts) != set(names) - {NAME}:
        raise DamagedArchive("the archive's parts are not those its manifest lists")
    check_parts(manifest, folder)
    from alembic.script import ScriptDirectory

    head = check_schema(manifest, ScriptDirectory.from_config(alembic_config(database_url)))
    return Opened(manifest, folder, head)


def check_archive(archive: Path, key: bytes, database_url: str) -> Manifest:
    """Every check a restore makes on the archive itself, changing nothing (`careloop restore --check`)."""
    with _workspace(archive.resolve().parent) as work:
        return _open(archive, key, work, database_url).manifest


def _check_folder_target(folder: Path, what: str) -> None:
    if folder.exists() and any(folder.iterdir()):
        raise TargetNotEmpty(f"the {what} folder {folder} is not empty; restore only into an empty one")


def restore_backup(
    settings: Settings,
    archive: Path,
    key: bytes,
    *,
    other_data_key: bool = False,
    say: Say = _quiet,
) -> Manifest:
    """Restore an archive into the configured (empty) database and (empty) media folder."""
    url = settings.database_url
    # the work folder beside the media folder: the archive may sit on read-only or remote storage
    with _workspace(settings.media_dir.resolve().parent) as work:
        say("opening and checking the archive")
        opened = _open(archive, key, work, url)
        manifest = opened.manifest
        kind = databases.kind_of(url)
        if manifest.database != kind:
            raise BackupError(f"the archive holds a {manifest.database} database; the target is {kind}")
        if manifest.data_key_id != key_fingerprint(settings.data_key_bytes) and not other_data_key:
            raise BackupError(
                f"the archive's identifiers were encrypted with data key {manifest.data_key_id}, but "
                f"CARELOOP_DATA_KEY is {key_fingerprint(settings.data_key_bytes)}: set the original data "
                "key (kept apart from backups) before restoring, or pass --other-data-key"
            )
        databases.check_empty(url)
        carried = [folder for folder in FOLDERS if folder.part in manifest.parts]
        targets = {folder.part: Path(getattr(settings, folder.setting)) for folder in carried}
        staged = {part: target.parent / f".{target.name}.restoring" for part, target in targets.items()}
        for folder in carried:
            _check_folder_target(targets[folder.part], folder.setting.removesuffix("_dir").replace("_", " "))
        try:
            for part, place in staged.items():
                shutil.rmtree(place, ignore_errors=True)
                place.mkdir(parents=True)
                with tarfile.open(opened.folder / part, "r:") as tar:
                    tar.extractall(place, filter="data")
            rows_in = sum(manifest.tables.values())
            say(f"loading the database ({rows_in} rows in {len(manifest.tables)} tables)")
            databases.restore(url, opened.folder / databases.part_name(kind))
            for part, place in staged.items():
                if targets[part].exists():
                    targets[part].rmdir()  # checked empty above
                place.rename(targets[part])
            if MEDIA in staged:
                say(f"restored {manifest.media_files} media files")
        finally:
            for place in staged.values():
                shutil.rmtree(place, ignore_errors=True)  # gone already when renamed into place
        revision, rows = databases.rows_after_restore(url)
        if revision != manifest.schema_revision or rows != manifest.tables:
            differing = sorted(
                name
                for name in set(rows) | set(manifest.tables)
                if rows.get(name) != manifest.tables.get(name)
            )
            raise BackupError(f"restored, but these tables' rows differ from the manifest: {differing}")
        if manifest.schema_revision != opened.head:
            say(f"upgrading the schema from {manifest.schema_revision} to {opened.head}")
            upgrade(url)
    return manifest
