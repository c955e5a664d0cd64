"""The LDAP / Active Directory adapter (ldap3): find the typed username's entry with the service account,
check her password by binding as that entry, and read her groups. Typed refusals, nothing else: which
account, roles and session follow is backend/security/ldap_sign_in.py's work.

Two rules hold before anything is sent: an empty password is refused here (a simple bind with a DN and no
password is an "unauthenticated bind" that Active Directory and many servers answer with success), and a
password only travels over TLS (ldaps://, or ldap:// after a StartTLS that must succeed) unless the
setting turning StartTLS off says otherwise."""

from __future__ import annotations

import contextlib
import math
import ssl
from dataclasses import dataclass
from enum import StrEnum

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from backend.app.settings import Settings


class DirectoryReason(StrEnum):
    EMPTY_PASSWORD = "empty_password"  # noqa: S105 (a reason code) refused before the directory is asked
    UNKNOWN_USER = "unknown_user"  # no entry (or more than one) matches the username
    BAD_PASSWORD = "bad_password"  # noqa: S105 (a reason code) the bind as her entry was refused
    UNAVAILABLE = "unavailable"  # no server answered, TLS failed, or the service account was refused


class DirectoryRefused(Exception):
    def __init__(self, reason: DirectoryReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DirectoryConfig:
    urls: tuple[str, ...]
    start_tls: bool
    ca_file: str
    bind_dn: str
    bind_password: str
    user_base: str
    user_filter: str
    name_attribute: str
    group_base: str  # empty: the entry's memberOf
    group_filter: str
    timeout: float


@dataclass(frozen=True)
class DirectoryUser:
    dn: str
    name: str
    groups: frozenset[str]  # normalised DNs (normalise_dn)


def config_from(settings: Settings) -> DirectoryConfig:
    password = settings.ldap_bind_password.get_secret_value() if settings.ldap_bind_password else ""
    return DirectoryConfig(
        urls=tuple(settings.ldap_urls),
        start_tls=settings.ldap_start_tls,
        ca_file=settings.ldap_ca_file,
        bind_dn=settings.ldap_bind_dn,
        bind_password=password,
        user_base=settings.ldap_user_base,
        user_filter=settings.ldap_user_filter,
        name_attribute=settings.ldap_name_attribute,
        group_base=settings.ldap_group_base,
        group_filter=settings.ldap_group_filter,
        timeout=settings.ldap_timeout_seconds,
    )


def normalise_dn(dn: str) -> str:
    """A DN as the group mappings compare it: case and the spaces around separators do not matter
    (`CN=Nurses, OU=Groups` and `cn=nurses,ou=groups` are one group)."""
    return ",".join("=".join(part.strip() for part in rdn.split("=", 1)) for rdn in dn.split(",")).lower()


def _server(config: DirectoryConfig, url: str) -> ldap3.Server:
    tls = ldap3.Tls(
        validate=ssl.CERT_REQUIRED,
        version=ssl.PROTOCOL_TLS_CLIENT,
        ca_certs_file=config.ca_file or None,
    )
    # get_info=NONE: ldap3 otherwise reads the server's whole schema and root DSE after every bind, two
    # extra round trips of tens of kilobytes per connection, and a sign-in opens two connections
    return ldap3.Server(
        url,
        use_ssl=url.lower().startswith("ldaps://"),
        tls=tls,
        connect_timeout=config.timeout,
        get_info=ldap3.NONE,
    )


def _close(connection: ldap3.Connection) -> None:
    """Unbind, whatever state the connection is in (a failed TLS handshake leaves its socket closed)."""
    with contextlib.suppress(LDAPException):
        connection.unbind()


def _open(config: DirectoryConfig, server: ldap3.Server, dn: str, password: str) -> ldap3.Connection:
    """A connection bound as `dn`, TLS first. Raises DirectoryRefused(UNAVAILABLE) when the server cannot
    be reached or TLS cannot be set up, BAD_PASSWORD when the bind itself is refused."""
    connection = ldap3.Connection(
        server,
        user=dn,
        password=password,
        auto_bind=ldap3.AUTO_BIND_NONE,
        # whole seconds: ldap3 packs it into the socket option as an integer (a float raises struct.error)
        receive_timeout=max(1, math.ceil(config.timeout)),
        read_only=True,
        raise_exceptions=False,
    )
    try:
        connection.open()
        if not server.ssl and config.start_tls and not connection.start_tls():
            _close(connection)
            raise DirectoryRefused(DirectoryReason.UNAVAILABLE, "StartTLS refused")
        bound = connection.bind()
    except LDAPException as exc:
        _close(connection)
        raise DirectoryRefused(DirectoryReason.UNAVAILABLE, type(exc).__name__) from exc
    if not bound:
        _close(connection)
        raise DirectoryRefused(DirectoryReason.BAD_PASSWORD, str(connection.result.get("description", "")))
    return connection


def _service(config: DirectoryConfig) -> tuple[ldap3.Server, ldap3.Connection]:
    """The first server that answers, bound as the service account."""
    if not config.bind_dn or not config.bind_password:
        raise DirectoryRefused(DirectoryReason.UNAVAILABLE, "no service account configured")
    problems = []
    for url in config.urls:
        server = _server(config, url)
        try:
            return server, _open(config, server, config.bind_dn, config.bind_password)
        except DirectoryRefused as refused:
            # a refused service account is a configuration fault, not the user's: the next server may differ
            problems.append(f"{url}: {refused.detail or refused.reason.value}")
    raise DirectoryRefused(DirectoryReason.UNAVAILABLE, "; ".join(problems)[:300] or "no servers")


def _search(connection: ldap3.Connection, base: str, query: str, attributes: list[str]) -> list[object]:
    try:
        connection.search(base, query, search_scope=ldap3.SUBTREE, attributes=attributes, size_limit=50)
    except LDAPException as exc:
        raise DirectoryRefused(DirectoryReason.UNAVAILABLE, type(exc).__name__) from exc
    return list(connection.entries)


def _values(entry: object, attribute: str) -> list[str]:
    try:
        values = entry[attribute].values  # type: ignore[index]
    except (KeyError, IndexError, ldap3.core.exceptions.LDAPCursorError):
        return []
    return [str(v) for v in values]


def authenticate(config: DirectoryConfig, username: str, password: str) -> DirectoryUser:
    """The directory's answer for `username` and `password`: her entry's DN, name and groups when the
    password is hers; else DirectoryRefused with the reason."""
    if not password:
        raise DirectoryRefused(DirectoryReason.EMPTY_PASSWORD)
    server, service = _service(config)
    try:
        query = config.user_filter.format(username=escape_filter_chars(username))
        wanted = [config.name_attribute, "cn"] + ([] if config.group_base else ["memberOf"])
        entries = _search(service, config.user_base, query, wanted)
        if len(entries) != 1:
            raise DirectoryRefused(DirectoryReason.UNKNOWN_USER, f"{len(entries)} entries match")
        entry = entries[0]
        dn = str(entry.entry_dn)  # type: ignore[attr-defined]
        if not dn:
            raise DirectoryRefused(DirectoryReason.UNKNOWN_USER, "entry without a DN")
        names = _values(entry, config.name_attribute) or _values(entry, "cn")
        if config.group_base:
            group_query = config.group_filter.format(
                user_dn=escape_filter_chars(dn), username=escape_filter_chars(username)
            )
            groups = [str(g.entry_dn) for g in _search(service, config.group_base, group_query, [])]  # type: ignore[attr-defined]
        else:
            groups = _values(entry, "memberOf")
    finally:
        _close(service)
    # her own bind, on a fresh connection: the password is checked by the directory, never by us
    _close(_open(config, server, dn, password))
    return DirectoryUser(
        dn=dn, name=names[0] if names else username, groups=frozenset(map(normalise_dn, groups))
    )
