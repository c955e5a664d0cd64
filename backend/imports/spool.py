"""The rows a confirm's check pass parsed, kept for its apply pass so that no row is read and parsed twice:
one sealed blob per chunk in a file beside the plan. They hold patients' data, so they are sealed under
the data key (with the job as associated data: one job's chunks cannot be passed off as another's) and the
file is removed with the uploaded file once the import is applied."""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from backend.imports import storage
from backend.imports.plan import Decision
from backend.imports.rows import Record
from backend.security.crypto import current_cipher

# A chunk's rows as `Planner.parse` gives them: a decision already taken (a problem found in the row
# alone, or a repeat of an earlier row) or None for a record still to decide against CareLoop's data.
Parsed = list[tuple[int, Record | None, Decision | None]]

_LENGTH = struct.Struct(">I")


def path(job_id: int) -> Path:
    return storage.folder() / f"spool-{job_id}.bin"


def _kind(job_id: int) -> str:
    return f"import_spool:{job_id}"


class Writer:
    """Appends chunks in the order they are parsed."""

    def __init__(self, job_id: int, out: BinaryIO) -> None:
        self.kind = _kind(job_id)
        self.out = out

    def write(self, parsed: Parsed) -> None:
        # pickle only ever reads back what this process sealed: a blob that fails authentication is
        # refused before it is unpickled
        blob = current_cipher().seal(self.kind, pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL))
        self.out.write(_LENGTH.pack(len(blob)))
        self.out.write(blob)


def chunks(job_id: int) -> Iterator[Parsed]:
    """The chunks in file order. Raises DecryptionError on a blob this key ring did not seal for this job,
    ValueError on a truncated file."""
    kind, cipher = _kind(job_id), current_cipher()
    with path(job_id).open("rb") as spooled:
        while header := spooled.read(_LENGTH.size):
            if len(header) < _LENGTH.size:
                raise ValueError("the spooled rows are truncated")
            (size,) = _LENGTH.unpack(header)
            blob = spooled.read(size)
            if len(blob) < size:
                raise ValueError("the spooled rows are truncated")
            parsed: Parsed = pickle.loads(cipher.unseal(kind, blob))  # noqa: S301 (sealed by us, see above)
            yield parsed
