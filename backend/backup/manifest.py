"""The archive's manifest: what it holds (schema revision, rows per table, each part's SHA-256) and the
checks a restore makes against it before touching anything."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from backend.backup.errors import BackupError, DamagedArchive, NewerSchema

FORMAT = 1
NAME = "manifest.json"


@dataclass(frozen=True)
class Part:
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    created_at: str
    database: str  # "postgresql" or "sqlite"
    schema_revision: str | None
    tables: dict[str, int]
    parts: dict[str, Part]
    data_key_id: str  # fingerprint of the field-encryption key the rows were written with (never the key)
    backup_key_id: str
    media_files: int = 0
    files: dict[str, int] = field(default_factory=dict)  # files in each folder part (media, imports, exports)
    format: int = FORMAT
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            raw: dict[str, Any] = json.loads(text)
            if raw.get("format") != FORMAT:
                raise BackupError(
                    f"archive format {raw.get('format')!r} is not one this CareLoop reads ({FORMAT})"
                )
            raw["parts"] = {name: Part(**part) for name, part in raw["parts"].items()}
            return cls(**raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise DamagedArchive(f"the archive's manifest is unreadable: {exc}") from exc


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(path: Path) -> Part:
    return Part(sha256=sha256_of(path), bytes=path.stat().st_size)


def check_parts(manifest: Manifest, folder: Path) -> None:
    """Every part present, of the recorded size and SHA-256."""
    for name, part in manifest.parts.items():
        path = folder / name
        if not path.is_file():
            raise DamagedArchive(f"the archive lacks its part {name}")
        found = describe(path)
        if found.bytes != part.bytes or found.sha256 != part.sha256:
            raise DamagedArchive(f"part {name} does not match its checksum in the manifest")


def check_schema(manifest: Manifest, scripts: ScriptDirectory) -> str:
    """The archive's schema must be one this CareLoop's migrations know; returns the current head."""
    head = scripts.get_current_head()
    assert head is not None
    revision = manifest.schema_revision
    if revision is None:
        raise DamagedArchive("the archive's database has no schema revision (alembic_version is empty)")
    try:
        known = scripts.get_revision(revision)
    except CommandError:
        known = None
    if known is None:
        raise NewerSchema(
            f"the archive's schema revision {revision} is unknown to this CareLoop (its newest is {head}): "
            "it was made by a newer version; restore it with that version or newer"
        )
    return head
