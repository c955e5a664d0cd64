"""Starting imports (dry run, confirm, reconciliation) and the saved column mappings: what the page and
the `careloop import` command call. Each start writes its audit row; the work itself runs as a job."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.imports import storage
from backend.imports.columns import FIELDS, ImportKind
from backend.imports.jobs import CONFIRM, DRY_RUN, RECONCILE
from backend.imports.readers import ReadError, open_table
from backend.models import ImportMapping, WorkJob, WorkState
from backend.services import audit
from backend.services.refusal import ActionRefused
from backend.work.runs import start

MAX_SOURCE = 180
ENCODINGS = ("utf-8", "gb18030", "utf-16")


class ImportReason(StrEnum):
    """Why an import could not be started; each translated on the imports page."""

    UNKNOWN_KIND = "unknown_kind"
    SOURCE_REQUIRED = "source_required"
    UNKNOWN_ENCODING = "unknown_encoding"
    NOT_A_DRY_RUN = "not_a_dry_run"
    DRY_RUN_NOT_DONE = "dry_run_not_done"
    NOTHING_TO_APPLY = "nothing_to_apply"
    ALREADY_CONFIRMED = "already_confirmed"
    TOO_LARGE = "too_large"
    EMPTY = "empty"
    STAFF_NOT_ALLOWED = "staff_not_allowed"


class ImportRefused(ActionRefused):
    def __init__(self, reason: ImportReason) -> None:
        Exception.__init__(self, reason.value)
        self.reason = reason


def saved_columns(session: Session, source: str, kind: ImportKind) -> dict[str, str]:
    mapping = session.scalar(
        sa.select(ImportMapping).where(ImportMapping.source == source, ImportMapping.kind == kind.value)
    )
    return dict(mapping.columns) if mapping is not None else {}


def do_save_mapping(
    session: Session, source: str, kind: ImportKind, columns: dict[str, str], *, staff_id: int | None
) -> None:
    """The columns a file of this source was read with, kept to read the next one the same way."""
    known = {f.name for f in FIELDS[kind]}
    columns = {k: v for k, v in columns.items() if k in known}
    mapping = session.scalar(
        sa.select(ImportMapping).where(ImportMapping.source == source, ImportMapping.kind == kind.value)
    )
    if mapping is None:
        mapping = ImportMapping(source=source, kind=kind.value, columns=columns)
        session.add(mapping)
    elif mapping.columns == columns:
        return
    mapping.columns = columns
    mapping.updated_by_id = staff_id
    session.flush()
    audit.record(session, "import.mapping_saved", staff_id=staff_id, subject=("import_mapping", mapping.id))


def sources(session: Session) -> list[str]:
    return list(session.scalars(sa.select(ImportMapping.source).distinct().order_by(ImportMapping.source)))


def _checked(kind: str, source: str, encoding: str | None) -> tuple[ImportKind, str, str | None]:
    if kind not in set(ImportKind):
        raise ImportRefused(ImportReason.UNKNOWN_KIND)
    source = source.strip()
    if not source or len(source) > MAX_SOURCE:
        raise ImportRefused(ImportReason.SOURCE_REQUIRED)
    encoding = (encoding or "").strip().lower() or None
    if encoding is not None and encoding not in ENCODINGS:
        raise ImportRefused(ImportReason.UNKNOWN_ENCODING)
    return ImportKind(kind), source, encoding


def do_start_dry_run(
    session: Session,
    *,
    kind: str,
    file: str,
    name: str,
    source: str,
    encoding: str | None,
    staff_id: int | None,
    columns: dict[str, str] | None = None,
    reconcile_only: bool = False,
    manages_staff: bool = True,
) -> WorkJob:
    """A queued dry run (or on-demand reconciliation) of a stored file; the caller commits and launches.
    A staff file only for someone who may manage staff accounts (`manages_staff`; the command's operator
    may)."""
    chosen, source, encoding = _checked(kind, source, encoding)
    if chosen is ImportKind.STAFF and not manages_staff:
        raise ImportRefused(ImportReason.STAFF_NOT_ALLOWED)
    params: dict[str, Any] = {
        "kind": chosen.value,
        "file": file,
        "name": name[:200],
        "source": source,
        "encoding": encoding,
        "columns": {**saved_columns(session, source, chosen), **(columns or {})},
    }
    job = start(session, RECONCILE if reconcile_only else DRY_RUN, params, staff_id)
    audit.record(
        session, "import.reconcile_started" if reconcile_only else "import.dry_run_started",
        staff_id=staff_id, subject=("work_job", job.id), kind=chosen.value,
    )  # fmt: skip
    return job


def confirms_of(session: Session, dry_run_id: int) -> list[WorkJob]:
    jobs = session.scalars(sa.select(WorkJob).where(WorkJob.kind == CONFIRM).order_by(WorkJob.id.desc()))
    return [job for job in jobs if int((job.params or {}).get("dry_run", 0)) == dry_run_id]


def do_start_confirm(
    session: Session, dry_run: WorkJob, *, staff_id: int | None, manages_staff: bool = True
) -> WorkJob:
    """A queued confirm of a finished dry run. Refused while another confirm of it is waiting or
    running, or once one has finished: the same file again needs a new dry run (it would change nothing)."""
    if dry_run.kind != DRY_RUN:
        raise ImportRefused(ImportReason.NOT_A_DRY_RUN)
    if (dry_run.params or {}).get("kind") == ImportKind.STAFF.value and not manages_staff:
        raise ImportRefused(ImportReason.STAFF_NOT_ALLOWED)
    if dry_run.state is not WorkState.DONE or not dry_run.result:
        raise ImportRefused(ImportReason.DRY_RUN_NOT_DONE)
    if not dry_run.result.get("writes"):
        raise ImportRefused(ImportReason.NOTHING_TO_APPLY)
    if any(
        job.state in {WorkState.QUEUED, WorkState.RUNNING, WorkState.DONE}
        for job in confirms_of(session, dry_run.id)
    ):
        raise ImportRefused(ImportReason.ALREADY_CONFIRMED)
    job = start(session, CONFIRM, {"dry_run": dry_run.id, "staff_id": staff_id}, staff_id)
    audit.record(
        session, "import.confirmed", staff_id=staff_id, subject=("work_job", job.id), dry_run=dry_run.id
    )
    return job


def headers_of(file: str, encoding: str | None) -> tuple[str, ...]:
    """The stored file's column names, for choosing columns by hand; none once it is gone or unreadable."""
    try:
        path = storage.file_path(file)
        if not path.exists():
            return ()
        table = open_table(path, encoding)
    except (ValueError, ReadError):
        return ()
    table.rows.close()  # type: ignore[attr-defined]
    return tuple(h for h in table.headers if h)


def do_dry_run_again(
    session: Session,
    dry_run: WorkJob,
    columns: dict[str, str],
    *,
    staff_id: int | None,
    manages_staff: bool = True,
) -> WorkJob:
    """The same stored file dry-run again with columns chosen by hand (saved for its source if it runs)."""
    if dry_run.kind != DRY_RUN:
        raise ImportRefused(ImportReason.NOT_A_DRY_RUN)
    params = dict(dry_run.params or {})
    known = {f.name for f in FIELDS[ImportKind(params["kind"])]}
    return do_start_dry_run(
        session, kind=params["kind"], file=params["file"], name=params.get("name", ""),
        source=params["source"], encoding=params.get("encoding"), staff_id=staff_id,
        columns={k: v for k, v in columns.items() if k in known and v}, manages_staff=manages_staff,
    )  # fmt: skip


def recent(session: Session, limit: int = 50) -> list[WorkJob]:
    return list(
        session.scalars(
            sa.select(WorkJob)
            .where(WorkJob.kind.in_([DRY_RUN, CONFIRM, RECONCILE]))
            .order_by(WorkJob.id.desc())
            .limit(limit)
        )
    )
