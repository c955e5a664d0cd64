"""Uploaded files kept under the data folder, named by their SHA-256, and the dry runs' plans beside
them: a confirm re-reads the very bytes its dry run read, and notices if they changed."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from backend.app.settings import get_settings

BLOCK = 1024 * 1024


class TooLarge(Exception):
    """The file is larger than the import size limit."""


def folder() -> Path:
    path = get_settings().import_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


def max_megabytes() -> int:
    return max(1, get_settings().import_max_bytes // (1024 * 1024))


def file_path(sha256: str) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a SHA-256 name")
    return folder() / f"{sha256}.upload"


def store(source: BinaryIO | Iterable[bytes], limit: int | None = None) -> tuple[str, int]:
    """Copy a stream to the data folder in blocks, hashing as it goes; (sha256, size). A file over the
    limit is refused and nothing of it kept."""
    limit = get_settings().import_max_bytes if limit is None else limit
    digest = hashlib.sha256()
    size = 0
    handle, temporary = tempfile.mkstemp(dir=folder(), suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            blocks = iter(lambda: source.read(BLOCK), b"") if hasattr(source, "read") else source
            for block in blocks:
                size += len(block)
                if size > limit:
                    raise TooLarge
                digest.update(block)
                out.write(block)
        name = digest.hexdigest()
        os.replace(temporary, file_path(name))
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return name, size


def hash_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def plan_path(job_id: int) -> Path:
    return folder() / f"plan-{job_id}.tsv"


def report_path(job_id: int) -> Path:
    return folder() / f"reconciliation-{job_id}.xlsx"


def count_lines(path: Path) -> int:
    """Line ends in the file: the number of CSV rows, near enough for a progress bar."""
    lines = 0
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(BLOCK), b""):
            lines += block.count(b"\n")
    return lines
