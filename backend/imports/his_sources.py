"""Read-only HIS sources (a database view or any SELECT watched by an updated-at column): the form an
integration officer fills, the verbs that save a source and start a pull (each audited; the database
address is a secret, kept encrypted and never written to the audit row or shown again), and the list the
page filters and exports."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.imports.columns import FIELDS, ImportKind
from backend.imports.his_pull import engine_for, parse_mark
from backend.imports.jobs import DRY_RUN
from backend.models import HisSource, WorkJob
from backend.models.base import utcnow
from backend.services import audit
from backend.services.message_log import InvalidFilter, text_value
from backend.services.refusal import ActionRefused
from backend.work.runs import WorkError, start

KINDS = (ImportKind.PATIENTS, ImportKind.ENCOUNTERS)  # what a HIS view feeds
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # also the import source (authority, code table)
MAX_QUERY = 20_000
# A SELECT (or WITH ... SELECT) naming the watermark bind parameter; the transaction is read-only anyway
SELECT = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


class PullOutcome(StrEnum):
    """How a source's last pull ended, as its page and the health page show it."""

    RUNNING = "running"
    AWAITING = "awaiting"  # a dry run with rows to apply, waiting for a person to confirm it
    APPLIED = "applied"  # every row applied (or nothing to apply)
    HELD = "held"  # applied, but rows with problems held: they come back on the next pull
    FAILED = "failed"


class HisReason(StrEnum):
    """Why a source could not be saved or pulled; each translated on the page."""

    BAD_NAME = "his_bad_name"
    NAME_TAKEN = "his_name_taken"
    BAD_URL = "his_bad_url"
    URL_REQUIRED = "his_url_required"
    BAD_QUERY = "his_bad_query"
    BAD_KIND = "his_bad_kind"
    BAD_COLUMN = "his_bad_column"
    BAD_INTERVAL = "his_bad_interval"
    BAD_WATERMARK = "his_bad_watermark"
    EDITED_MEANWHILE = "his_edited_meanwhile"
    BUSY = "his_busy"


class HisRefused(ActionRefused):
    def __init__(self, reason: HisReason) -> None:
        Exception.__init__(self, reason.value)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class HisForm:
    name: str
    url: str | None  # None keeps the stored address (it is never shown again)
    query: str
    kind: ImportKind
    columns: dict[str, str]  # import field -> result column
    watermark_column: str
    watermark: str | None
    interval_minutes: int
    auto_apply: bool
    enabled: bool


def parse_his_form(values: Mapping[str, str], *, creating: bool) -> HisForm:
    """The form's values checked; raises HisRefused naming the first that does not fit."""
    name = values.get("name", "").strip()
    if not NAME.fullmatch(name):
        raise HisRefused(HisReason.BAD_NAME)
    url = values.get("url", "").strip() or None
    if url is None and creating:
        raise HisRefused(HisReason.URL_REQUIRED)
    if url is not None:
        try:
            engine_for(url, 1).dispose()
        except WorkError:
            raise HisRefused(HisReason.BAD_URL) from None
    query = values.get("query", "").strip()
    if not SELECT.match(query) or ":since" not in query or len(query) > MAX_QUERY:
        raise HisRefused(HisReason.BAD_QUERY)
    kind_text = values.get("kind", "")
    if kind_text not in {k.value for k in KINDS}:
        raise HisRefused(HisReason.BAD_KIND)
    kind = ImportKind(kind_text)
    columns = {}
    for field in FIELDS[kind]:
        column = values.get(f"column-{field.name}", "").strip()
        if len(column) > 100:
            raise HisRefused(HisReason.BAD_COLUMN)
        if column:
            columns[field.name] = column
    watermark_column = values.get("watermark_column", "").strip()
    if not watermark_column or len(watermark_column) > 100:
        raise HisRefused(HisReason.BAD_COLUMN)
    watermark = values.get("watermark", "").strip() or None
    if watermark is not None and parse_mark(watermark) is None:
        raise HisRefused(HisReason.BAD_WATERMARK)
    interval = values.get("interval_minutes", "").strip()
    if not interval.isascii() or not interval.isdigit() or not 5 <= int(interval) <= 7 * 24 * 60:
        raise HisRefused(HisReason.BAD_INTERVAL)
    return HisForm(
        name=name,
        url=url,
        query=query,
        kind=kind,
        columns=columns,
        watermark_column=watermark_column,
        watermark=parse_mark(watermark).isoformat(sep=" ") if watermark else None,  # type: ignore[union-attr]
        interval_minutes=int(interval),
        auto_apply=values.get("auto_apply") == "on",
        enabled=values.get("enabled") == "on",
    )


def do_save_source(
    session: Session, *, source_id: int | None, version: int, form: HisForm, by: int | None, ip: str | None
) -> HisSource:
    """Create a source, or change one (refused over an edit the form had not seen). The audit row names
    what changed, the address only as "url" (never its value)."""
    taken = session.scalar(sa.select(HisSource.id).where(HisSource.name == form.name))
    if taken is not None and taken != source_id:
        raise HisRefused(HisReason.NAME_TAKEN)
    if source_id is None:
        assert form.url is not None
        source = HisSource(url=form.url, columns={})
        session.add(source)
        changed = ["created"]
    else:
        found = session.get(HisSource, source_id, with_for_update=True)
        if found is None or found.version != version:
            raise HisRefused(HisReason.EDITED_MEANWHILE)
        source = found
        compared = ("name", "query", "kind", "columns", "watermark_column", "watermark", "interval_minutes",
                    "auto_apply", "enabled")  # fmt: skip
        changed = sorted(name for name in compared if getattr(source, name) != getattr(form, name))
        if form.url is not None and form.url != source.url:
            source.url = form.url
            changed.append("url")
        source.version += 1
    source.name, source.query, source.kind = form.name, form.query, form.kind.value
    source.columns, source.watermark_column = dict(form.columns), form.watermark_column
    source.watermark, source.interval_minutes = form.watermark, form.interval_minutes
    source.auto_apply, source.enabled, source.updated_by = form.auto_apply, form.enabled, by
    session.flush()
    audit.record(session, "his_source.saved", staff_id=by, subject=("his_source", source.id), ip=ip,
                 changed=changed)  # fmt: skip
    return source


def busy(session: Session, source: HisSource) -> bool:
    """Whether the source's last pull is still running, or its confirm is."""
    from backend.imports.his_runs import pending_confirm

    job = session.get(WorkJob, source.last_job_id) if source.last_job_id else None
    if job is not None and not job.state.finished:
        return True
    return pending_confirm(session, source) is not None


def do_start_pull(session: Session, source: HisSource, *, by: int | None, ip: str | None = None) -> WorkJob:
    """A pull of the source: a dry run of what its query returns from the watermark (the caller commits
    and launches it). Refused while the last one, or its confirm, is not finished."""
    if busy(session, source):
        raise HisRefused(HisReason.BUSY)
    params: dict[str, Any] = {
        "kind": source.kind,
        "file": "",  # the pull stores the rows it reads and names them in the result
        "name": f"{source.name} (HIS)",
        "source": source.name,
        "encoding": "utf-8",
        "columns": dict(source.columns or {}),
        "his_source": source.id,
    }
    job = start(session, DRY_RUN, params, by)
    source.last_job_id, source.last_run_at = job.id, utcnow()
    source.last_outcome, source.last_error = PullOutcome.RUNNING.value, None
    audit.record(
        session, "his_source.pull", staff_id=by, subject=("his_source", source.id), ip=ip, job=job.id
    )
    return job


# --- the list ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HisFilters:
    outcome: str | None = None
    kind: str | None = None
    enabled: bool | None = None
    text: str = ""


def parse_his_filters(values: Mapping[str, str]) -> HisFilters:
    outcome = text_value(values, "outcome")
    if outcome and outcome not in {o.value for o in PullOutcome} | {"never"}:
        raise InvalidFilter("outcome")
    kind = text_value(values, "kind")
    if kind and kind not in {k.value for k in KINDS}:
        raise InvalidFilter("kind")
    enabled = text_value(values, "enabled")
    if enabled not in ("", "yes", "no"):
        raise InvalidFilter("enabled")
    return HisFilters(outcome or None, kind or None, None if not enabled else enabled == "yes",
                      text_value(values, "q"))  # fmt: skip


def source_list(session: Session, filters: HisFilters) -> list[HisSource]:
    query = sa.select(HisSource).order_by(HisSource.name)
    if filters.outcome == "never":
        query = query.where(HisSource.last_outcome.is_(None))
    elif filters.outcome:
        query = query.where(HisSource.last_outcome == filters.outcome)
    if filters.kind:
        query = query.where(HisSource.kind == filters.kind)
    if filters.enabled is not None:
        query = query.where(HisSource.enabled.is_(filters.enabled))
    if filters.text:
        query = query.where(HisSource.name.icontains(filters.text, autoescape=True))
    return list(session.scalars(query))


def failing(session: Session) -> list[HisSource]:
    """Enabled sources whose last pull failed: the health page lists them."""
    query = sa.select(HisSource).where(
        HisSource.enabled.is_(True), HisSource.last_outcome == PullOutcome.FAILED
    )
    return list(session.scalars(query.order_by(HisSource.name)))
