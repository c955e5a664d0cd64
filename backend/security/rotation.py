"""Key rotation: the long-work job that rewrites every encrypted column, then every sealed media file,
under the current key, then the sealed files no row names (backend/security/file_stores.py).

The columns are found in the models' metadata (every column whose type carries an encryption `kind`), so
a column encrypted later is rotated without this module changing. Values are read raw, re-encrypted only
when their token names another key, and written back with a conditional UPDATE (`WHERE value = old`): a
value the application changed meanwhile is already under the current key and is left alone (a chunk per
statement on PostgreSQL: rotation_writes.py). Old keys keep
decrypting throughout, so the application runs normally while the job works. Blind indexes are not
touched: their key is a separate one that rotation does not change (see docs/security.md). Media files
(backend/security/media_keys.py) are re-sealed in place, each replaced by one rename.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.app.db import session_scope
from backend.app.settings import get_settings
from backend.models import Base
from backend.models.base import EncryptedDate, EncryptedJSON, EncryptedText
from backend.models.integration import SealedBytes
from backend.security import file_stores, media_keys
from backend.security.crypto import DecryptionError, FieldCipher, current_cipher
from backend.security.rotation_writes import Renewal, write_back
from backend.work.runs import Progress, Runner, WorkError, register

ROTATE_KIND = "keys.rotate"
CHUNK = 500


@dataclass(frozen=True)
class EncryptedColumn:
    table: str
    column: str
    kind: str
    blob: bool  # SealedBytes: raw bytes with no key name in them
    json: bool  # EncryptedJSON: the token is a JSON string
    key: str = "id"  # the table's single-column primary key, walked in order
    text_key: bool = False  # a text key (a setting's name) rather than an integer id

    @property
    def start(self) -> int | str:
        """A key value below every row's: where a walk of the table begins."""
        return "" if self.text_key else 0

    def resumed(self, value: Any) -> int | str:
        return str(value) if self.text_key else int(value)

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"

    def raw_table(self) -> sa.TableClause:
        """The table with this column untyped (raw tokens in and out, no decryption on the way)."""
        raw: sa.types.TypeEngine[Any] = (
            sa.LargeBinary() if self.blob else sa.JSON() if self.json else sa.Text()
        )
        key_type: sa.types.TypeEngine[Any] = sa.String() if self.text_key else sa.Integer()
        return sa.table(self.table, sa.column(self.key, key_type), sa.column(self.column, raw))


def encrypted_columns() -> list[EncryptedColumn]:
    """Every encrypted column of the schema, in a stable order (the job's cursor indexes this list)."""
    found = []
    for table in sorted(Base.metadata.tables.values(), key=lambda t: t.name):
        for column in table.columns:
            kind_type = column.type
            if isinstance(kind_type, EncryptedText | EncryptedJSON | EncryptedDate | SealedBytes):
                keys = list(table.primary_key.columns)
                if len(keys) != 1:
                    raise WorkError(f"{table.name} has no single-column key; rotation cannot walk it")
                found.append(
                    EncryptedColumn(
                        table.name,
                        column.name,
                        kind_type.kind,
                        blob=isinstance(kind_type, SealedBytes),
                        json=isinstance(kind_type, EncryptedJSON),
                        key=keys[0].name,
                        text_key=isinstance(keys[0].type, sa.String),
                    )
                )
    return found


def _renewed(cipher: FieldCipher, col: EncryptedColumn, value: Any) -> Any:
    """The value under the current key, or None when it already is."""
    if col.blob:
        return cipher.reseal(col.kind, bytes(value))
    if not isinstance(value, str):  # a JSON column's value written before it was encrypted
        raise DecryptionError(f"{col.name} holds a value that is not a token")
    return cipher.reencrypt(col.kind, value)


def rotate_chunk(
    session: Session, cipher: FieldCipher, col: EncryptedColumn, after_id: int | str
) -> tuple[int | str, Counter[str], list[tuple[int | str, str]]]:
    """Re-encrypt up to CHUNK rows of one column after `after_id` (its table's key): (last key seen,
    counts, failures)."""
    t = col.raw_table()
    value = t.c[col.column]
    key = t.c[col.key]
    rows = session.execute(
        sa.select(key, value).where(key > after_id, value.is_not(None)).order_by(key).limit(CHUNK)
    ).all()
    counts: Counter[str] = Counter()
    failures: list[tuple[int | str, str]] = []
    renewals: list[Renewal] = []
    for row_id, old in rows:
        if (col.json and old is None) or old == "":  # a JSON null or an empty text: nothing sealed in it
            counts["current"] += 1
            continue
        try:
            new = _renewed(cipher, col, old)
        except DecryptionError:
            counts["failed"] += 1
            failures.append((row_id, "the value does not open with any key of the ring"))
            continue
        if new is None:
            counts["current"] += 1
            continue
        renewals.append(Renewal(row_id, old, new))
    written = write_back(session, col, renewals)
    counts["rewritten"] += written
    # whoever changed a value meanwhile wrote it under the current key
    counts["changed_meanwhile"] += len(renewals) - written
    counts += Counter()  # drop the zero counts, as before
    return (rows[-1][0] if rows else after_id), counts, failures


def count_rows(session: Session, columns: list[EncryptedColumn]) -> int:
    total = 0
    for col in columns:
        t = col.raw_table()
        total += (
            session.scalar(sa.select(sa.func.count()).select_from(t).where(t.c[col.column].is_not(None))) or 0
        )
    return total


def rotate(progress: Progress) -> dict[str, Any]:
    """The runner: column by column, chunk by chunk, each chunk committed with its checkpoint."""
    columns = encrypted_columns()
    cipher = current_cipher()
    cursor = progress.cursor or {}
    index = int(cursor.get("column", 0))
    after_id: int | str = (
        columns[index].resumed(cursor["after_id"])
        if index < len(columns) and cursor.get("after_id") is not None
        else (columns[index].start if index < len(columns) else 0)
    )
    if progress.total is None:
        with session_scope() as session:
            progress.total = (
                count_rows(session, columns)
                + media_keys.count_referencing_rows(session)
                + file_stores.count_files()
            )
        progress.save()
    while index < len(columns):
        col = columns[index]
        with session_scope() as session:
            last, counts, failures = rotate_chunk(session, cipher, col, after_id)
            for row_id, message in failures:
                progress.error(f"{col.name}#{row_id}", message)
            seen = sum(counts.values())
            progress.advance(seen, **counts)
            if seen < CHUNK:
                index += 1
                after_id = columns[index].start if index < len(columns) else 0
            else:
                after_id = last
            progress.checkpoint(session, {"column": index, "after_id": after_id})
    _reseal_media(progress, cipher, int(cursor.get("media_source", 0)), int(cursor.get("media_after", 0)))
    _reseal_stores(progress, cipher, int(cursor.get("store", 0)), str(cursor.get("store_after", "")))
    return {"key": cipher.current_prefix, "columns": len(columns), **progress.counts}


def _reseal_media(progress: Progress, cipher: FieldCipher, source_index: int, after_id: int) -> None:
    """The files, source by source: a chunk's files are re-sealed, then its checkpoint committed (a killed
    job redoes at most one chunk, and a file already re-sealed counts as current the second time)."""
    folder = get_settings().media_dir
    cursor_column = len(encrypted_columns())
    while source_index < len(media_keys.SOURCES):
        source = media_keys.SOURCES[source_index]
        with session_scope() as session:
            files, last, seen = media_keys.files_after(session, source, after_id)
            counts: Counter[str] = Counter()
            for found in files:
                outcome = media_keys.reseal_file(folder, cipher, found)
                counts[f"media_{outcome}"] += 1
                if outcome == "failed":
                    progress.error(
                        f"{found.source}#{found.row_id}", "a media file opens with no key of the ring"
                    )
            progress.advance(seen, **counts)
            if seen < media_keys.CHUNK:
                source_index, after_id = source_index + 1, 0
            else:
                after_id = last
            progress.checkpoint(
                session, {"column": cursor_column, "media_source": source_index, "media_after": after_id}
            )


def _reseal_stores(progress: Progress, cipher: FieldCipher, store_index: int, after: str) -> None:
    """The sealed files no row names (import reports, data exports), store by store in name order, a
    checkpoint after each chunk; re-sealing is the media files' (one rename per file)."""
    done_media = {"column": len(encrypted_columns()), "media_source": len(media_keys.SOURCES)}
    while store_index < len(file_stores.STORES):
        store = file_stores.STORES[store_index]
        files = store.files_after(after)
        counts: Counter[str] = Counter()
        for found in files:
            outcome = media_keys.reseal_file(store.folder(), cipher, found)
            counts[f"files_{outcome}"] += 1
            if outcome == "failed":
                progress.error(f"{found.source}:{found.name}", "a sealed file opens with no key of the ring")
        progress.advance(len(files), **counts)
        if len(files) < file_stores.CHUNK:
            store_index, after = store_index + 1, ""
        else:
            after = files[-1].name
        with session_scope() as session:
            progress.checkpoint(session, {**done_media, "store": store_index, "store_after": after})


def key_census(session: Session) -> dict[str, int]:
    """How many stored values and media files each key (token prefix) sealed: an old key may be removed
    from the ring once it seals nothing. Blobs and files have no key name; they count under the key that
    opens them."""
    cipher = current_cipher()
    census: Counter[str] = Counter()
    for col in encrypted_columns():
        t = col.raw_table()
        value = t.c[col.column]
        key = t.c[col.key]
        after = col.start
        while True:
            rows = session.execute(
                sa.select(key, value).where(key > after, value.is_not(None)).order_by(key).limit(CHUNK)
            ).all()
            if not rows:
                break
            after = rows[-1][0]
            for _row_id, token in rows:
                if col.blob:
                    census[cipher.blob_key(col.kind, bytes(token)) or "unreadable"] += 1
                elif isinstance(token, str) and token:  # an empty text is stored as itself
                    census[token.partition(":")[0]] += 1
    folder = get_settings().media_dir
    for source in media_keys.SOURCES:
        after_row = 0
        while True:
            files, after_row, seen = media_keys.files_after(session, source, after_row)
            for found in files:
                sealer = media_keys.file_key(folder, cipher, found)
                census[sealer if sealer != "missing" else "media files missing"] += 1
            if seen < media_keys.CHUNK:
                break
    for store in file_stores.STORES:
        for found in store.files_after("", limit=10**9):
            census[media_keys.file_key(store.folder(), cipher, found)] += 1
    return dict(census)


register(Runner(kind=ROTATE_KIND, run=rotate, title="Re-encryption under the current key"))
