"""FHIR API clients (SMART Backend Services or an API key), their short-lived access tokens, and the
client assertions already used (so a captured assertion cannot be replayed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, utcnow


class FhirClient(Base):
    """An outside system allowed to call /fhir/R4: its public keys (JWKS) or the hash of its API key,
    the SMART v2 scopes it may be granted, and the one department it is limited to (none: all)."""

    __tablename__ = "fhir_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)  # also the OAuth client_id
    jwks: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # {"keys": [...]}: public keys only
    api_key_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)  # sha256 of the key
    scopes: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FhirAccessToken(Base):
    """A bearer token issued at the token endpoint; only its hash is stored."""

    __tablename__ = "fhir_access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("fhir_clients.id"), index=True)
    scopes: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FhirUsedAssertion(Base):
    """The `jti` of every client assertion accepted, kept until the assertion would have expired anyway."""

    __tablename__ = "fhir_used_assertions"
    __table_args__ = (sa.UniqueConstraint("client_id", "jti", name="uq_fhir_used_assertions_client_jti"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("fhir_clients.id"))
    jti: Mapped[str] = mapped_column(sa.String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
