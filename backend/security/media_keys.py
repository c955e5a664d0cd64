"""The sealed files under `media_dir` as key rotation sees them: which rows name each file and the kind
bound into its seal, re-sealing one file under the current key without a moment where it cannot be read,
and counting which key seals each (so an old key is dropped from the ring only once no file needs it).

Files carry no key name, so each is found through the rows that reference it: a message's media items,
a case's attachments, and the answer audio a voice call kept.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.messaging.media import media_kind
from backend.models import CaseAttachment, Message, VoiceCall
from backend.security.crypto import DecryptionError, FieldCipher
from backend.services.case_files import attachment_kind
from backend.voice.call_media import answer_audio_kind

CHUNK = 500


@dataclass(frozen=True)
class MediaFile:
    source: str  # the table whose row names the file
    row_id: int
    name: str
    kind: str


def _message_files(rows: list[Any]) -> Iterator[MediaFile]:
    for row_id, media in rows:
        for item in media or []:
            stored = item.get("stored") if isinstance(item, dict) else None
            if stored:
                yield MediaFile("messages", row_id, str(stored), media_kind(row_id))


def _attachment_files(rows: list[Any]) -> Iterator[MediaFile]:
    for row_id, case_id, stored in rows:
        yield MediaFile("case_attachments", row_id, stored, attachment_kind(case_id))


def _voice_files(rows: list[Any]) -> Iterator[MediaFile]:
    for row_id, lines in rows:
        for line in lines or []:
            audio = line.get("audio") if isinstance(line, dict) else None
            if audio:
                yield MediaFile("voice_calls", row_id, str(audio), answer_audio_kind(row_id))


@dataclass(frozen=True)
class Source:
    name: str
    query: Callable[[int], sa.Select[Any]]  # rows after an id, in id order
    files: Callable[[list[Any]], Iterator[MediaFile]]


def _messages_after(after: int) -> sa.Select[Any]:
    query: sa.Select[Any] = (
        sa.select(Message.id, Message.media)
        .where(Message.id > after, Message.media.is_not(None))
        .order_by(Message.id)
    )
    return query


def _attachments_after(after: int) -> sa.Select[Any]:
    query = (
        sa.select(CaseAttachment.id, CaseAttachment.case_id, CaseAttachment.stored)
        .where(CaseAttachment.id > after)
        .order_by(CaseAttachment.id)
    )
    return cast("sa.Select[Any]", query)


def _calls_after(after: int) -> sa.Select[Any]:
    # the transcripts are decrypted on the way out; a call without kept audio costs one small read
    query: sa.Select[Any] = (
        sa.select(VoiceCall.id, VoiceCall.transcripts).where(VoiceCall.id > after).order_by(VoiceCall.id)
    )
    return query


SOURCES = (
    Source("messages", _messages_after, _message_files),
    Source("case_attachments", _attachments_after, _attachment_files),
    Source("voice_calls", _calls_after, _voice_files),
)


def files_after(session: Session, source: Source, after_id: int) -> tuple[list[MediaFile], int, int]:
    """The files named by up to CHUNK rows of `source` after `after_id`: (files, last id, rows read)."""
    rows = session.execute(source.query(after_id).limit(CHUNK)).all()
    return list(source.files(list(rows))), (rows[-1][0] if rows else after_id), len(rows)


def _safe_path(folder: Path, name: str) -> Path | None:
    if "/" in name or "\\" in name or name.startswith(".") or not name:
        return None
    return folder / name


def reseal_file(folder: Path, cipher: FieldCipher, found: MediaFile) -> str:
    """Re-seal one file under the current key: `rewritten`, `current`, `missing` (the row names a file
    that is not there, as after a retention run) or `failed` (no key of the ring opens it). The new
    bytes go to a temporary file, are flushed to disk, and replace the old one in one rename, so a reader
    sees the old file or the new one (both open), never half of either."""
    path = _safe_path(folder, found.name)
    if path is None or not path.is_file():
        return "missing"
    try:
        renewed = cipher.reseal(found.kind, path.read_bytes())
    except DecryptionError:
        return "failed"
    if renewed is None:
        return "current"
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with temporary.open("wb") as out:
        out.write(renewed)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    return "rewritten"


def file_key(folder: Path, cipher: FieldCipher, found: MediaFile) -> str:
    """The key prefix that seals one file, `missing` or `unreadable` (for the census)."""
    path = _safe_path(folder, found.name)
    if path is None or not path.is_file():
        return "missing"
    return cipher.blob_key(found.kind, path.read_bytes()) or "unreadable"


def count_referencing_rows(session: Session) -> int:
    """Rows that may name files (the job's total is rows, not files: counting files means reading them)."""
    return sum(
        session.scalar(sa.select(sa.func.count()).select_from(source.query(0).order_by(None).subquery())) or 0
        for source in SOURCES
    )
