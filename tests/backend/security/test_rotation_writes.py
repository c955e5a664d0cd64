"""Rotation's write-back (one statement per chunk on PostgreSQL, one per row on SQLite): every kind of
encrypted column is rewritten where it still holds the token that was read, and a value changed meanwhile
is left as the application wrote it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backend.models import Hl7Message
from backend.models.channel_config import ChannelSetting
from backend.models.integration import Hl7Status
from backend.security import rotation
from backend.security.crypto import current_cipher
from backend.security.rotation_writes import Renewal, write_back
from bots.domain import Channel
from tests import factories


def _column(name: str) -> rotation.EncryptedColumn:
    return next(c for c in rotation.encrypted_columns() if c.name == name)


def _raw(db: Session, col: rotation.EncryptedColumn) -> dict[Any, Any]:
    t = col.raw_table()
    return dict(db.execute(sa.select(t.c[col.key], t.c[col.column]).order_by(t.c[col.key])).all())


def _fresh(col: rotation.EncryptedColumn, plain: str) -> object:
    """Another token for the same column (a fresh nonce), as a rotation would write."""
    cipher = current_cipher()
    if col.blob:
        return cipher.seal(col.kind, plain.encode())
    return cipher.encrypt(col.kind, plain)


def test_each_kind_of_column_is_rewritten_only_where_the_old_token_is_still_there(db: Session) -> None:
    people = [factories.patient(db, name=f"Person {n}") for n in range(3)]
    for person in people:
        conv = factories.conversation(db, person, Channel.SMS)
        conv.state = {"slots": {"n": person.id}}
    for n in range(3):
        db.add(
            Hl7Message(
                content_hash=f"{n:064d}", status=Hl7Status.APPLIED, ack_code="AA", payload=f"MSH|{n}".encode()
            )
        )
        db.add(ChannelSetting(name=f"secret_{n}", value=None, secret=f"token-{n}"))
    db.commit()

    for name in ("patients.name", "conversations.state", "hl7_messages.payload", "channel_settings.secret"):
        col = _column(name)
        before = _raw(db, col)
        keys = list(before)
        assert len(keys) == 3, name
        renewals = [Renewal(k, before[k], _fresh(col, f"new {k}")) for k in keys]
        # the application rewrote the last row after the job read it: the job's old token is stale
        stale = renewals[-1]
        renewals[-1] = Renewal(stale.key, _fresh(col, "read long ago"), stale.new)
        assert write_back(db, col, renewals) == 2, name
        db.commit()
        after = _raw(db, col)
        assert [after[k] for k in keys[:2]] == [r.new for r in renewals[:2]], name
        assert after[keys[2]] == before[keys[2]], name  # left as the application wrote it
        assert write_back(db, col, []) == 0
