"""A real local SMTP server (asyncio, on 127.0.0.1) playing a mail relay, for tests.

    with FakeSmtp(username="careloop", password="pw", tls="starttls") as fake:
        ...send to fake.host, fake.port, trusting fake.cert_file...
        fake.received[-1].envelope_from, .recipients, .message (an EmailMessage), .tls, .user
        fake.fail("RCPT", 550, "5.1.1 no such user")   # the next RCPT answers 550
        fake.fail("DATA-END", 451, "4.3.0 try later", times=2)
        fake.hang_after_data()                         # takes the message, then drops the line unanswered

It speaks RFC 5321 as a submission server does: a 220 greeting; EHLO (listing STARTTLS while the
connection is clear, AUTH PLAIN, 8BITMIME, SIZE); STARTTLS (RFC 3207) upgrading the same connection
with a self-signed certificate for 127.0.0.1; or TLS from the first byte (`tls="ssl"`); AUTH PLAIN
(RFC 4954, the initial response inline or after a 334) checked against the configured user; MAIL
refused with 530 before AUTH when a user is configured, and with 530 before STARTTLS when
`require_tls`; RCPT only after MAIL, DATA only after RCPT; the message ends at CRLF.CRLF with dots
un-stuffed; RSET, NOOP and QUIT. Failures on demand name the stage: "MAIL", "RCPT", "DATA" (the reply
to the DATA command) or "DATA-END" (the reply after the message was taken, which is then not kept).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from ipaddress import IPv4Address
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Reply = Callable[..., Awaitable[None]]


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    data: bytes
    tls: bool
    user: str | None

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Rule:
    code: int
    text: str
    times: int


@dataclass
class _Session:
    tls: bool
    user: str | None = None
    envelope_from: str | None = None
    recipients: list[str] = field(default_factory=list)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.pem", directory / "smtp.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class FakeSmtp:
    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: str = "none",  # "none", "starttls" (offered) or "ssl"
        require_tls: bool = False,
    ) -> None:
        self.username, self.password, self.mode, self.require_tls = username, password, tls, require_tls
        self.host = "127.0.0.1"
        self.port = 0
        self.received: list[Received] = []
        self.connections = 0
        self._rules: dict[str, _Rule] = {}
        self._hang = 0
        self._lock = threading.Lock()
        self._dir = tempfile.TemporaryDirectory()
        cert, key = _self_signed(Path(self._dir.name))
        self.cert_file = str(cert)
        self._server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_tls.load_cert_chain(cert, key)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-smtp", daemon=True)
        self._server: asyncio.Server | None = None

    # --- control -----------------------------------------------------------------------------------

    def fail(self, stage: str, code: int, text: str, *, times: int = 1) -> None:
        with self._lock:
            self._rules[stage.upper()] = _Rule(code, text, times)

    def hang_after_data(self, times: int = 1) -> None:
        """Keep the next message(s), then close the connection without the final reply."""
        with self._lock:
            self._hang = times

    def _rule(self, stage: str) -> _Rule | None:
        with self._lock:
            rule = self._rules.get(stage)
            if rule is None:
                return None
            rule.times -= 1
            if rule.times <= 0:
                del self._rules[stage]
            return rule

    # --- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> FakeSmtp:
        self._thread.start()
        ssl_context = self._server_tls if self.mode == "ssl" else None
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, self.host, 0, ssl=ssl_context), self._loop
        )
        self._server = started.result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._dir.cleanup()

    # --- the protocol ------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        state = _Session(tls=self.mode == "ssl")

        async def reply(code: int, text: str, *more: str) -> None:
            lines = [text, *more]
            for i, line in enumerate(lines):
                sep = " " if i == len(lines) - 1 else "-"
                writer.write(f"{code}{sep}{line}\r\n".encode())
            await writer.drain()

        try:
            await reply(220, "fake-smtp.test ESMTP ready")
            while True:
                raw = await reader.readline()
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb, _, argument = line.partition(" ")
                verb = verb.upper()
                if verb in ("EHLO", "HELO"):
                    features = ["8BITMIME", "SIZE 10240000", "AUTH PLAIN"]
                    if self.mode == "starttls" and not state.tls:
                        features.append("STARTTLS")
                    await reply(250, "fake-smtp.test", *features)
                elif verb == "STARTTLS":
                    if self.mode != "starttls" or state.tls:
                        await reply(503, "5.5.1 TLS not available")
                        continue
                    await reply(220, "2.0.0 ready to start TLS")
                    await writer.start_tls(self._server_tls)
                    state = _Session(tls=True)  # RFC 3207: forget everything said before
                elif verb == "AUTH":
                    await self._auth(argument, state, reader, reply)
                elif verb == "MAIL":
                    await self._mail(argument, state, reply)
                elif verb == "RCPT":
                    if state.envelope_from is None:
                        await reply(503, "5.5.1 MAIL first")
                        continue
                    rule = self._rule("RCPT")
                    if rule is not None:
                        await reply(rule.code, rule.text)
                        continue
                    state.recipients.append(argument.partition(":")[2].strip().strip("<>"))
                    await reply(250, "2.1.5 ok")
                elif verb == "DATA":
                    if not await self._data(state, reader, writer, reply):
                        return
                elif verb == "RSET":
                    state = _Session(tls=state.tls, user=state.user)
                    await reply(250, "2.0.0 ok")
                elif verb == "NOOP":
                    await reply(250, "2.0.0 ok")
                elif verb == "QUIT":
                    await reply(221, "2.0.0 bye")
                    return
                else:
                    await reply(502, "5.5.2 command not recognised")
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def _auth(self, argument: str, state: _Session, reader: asyncio.StreamReader, reply: Reply) -> None:
        mechanism, _, initial = argument.partition(" ")
        if mechanism.upper() != "PLAIN":
            await reply(504, "5.5.4 only PLAIN")
            return
        if not initial:
            await reply(334, "")
            initial = (await reader.readline()).decode().strip()
        try:
            _, user, password = base64.b64decode(initial, validate=True).decode().split("\0")
        except ValueError:
            await reply(501, "5.5.2 cannot decode")
            return
        if user == self.username and password == self.password:
            state.user = user
            await reply(235, "2.7.0 authenticated")
        else:
            await reply(535, "5.7.8 authentication credentials invalid")

    async def _mail(self, argument: str, state: _Session, reply: Reply) -> None:
        if self.require_tls and not state.tls:
            await reply(530, "5.7.0 must issue STARTTLS first")
            return
        if self.username is not None and state.user is None:
            await reply(530, "5.7.0 authentication required")
            return
        rule = self._rule("MAIL")
        if rule is not None:
            await reply(rule.code, rule.text)
            return
        address = argument.partition(":")[2].strip().split(" ")[0].strip("<>")
        state.envelope_from, state.recipients = address, []
        await reply(250, "2.1.0 ok")

    async def _data(
        self, state: _Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: Reply
    ) -> bool:
        """Returns False when the connection is to be dropped."""
        if not state.recipients:
            await reply(503, "5.5.1 RCPT first")
            return True
        rule = self._rule("DATA")
        if rule is not None:
            await reply(rule.code, rule.text)
            return True
        await reply(354, "end with <CRLF>.<CRLF>")
        lines: list[bytes] = []
        while True:
            raw = await reader.readline()
            if not raw:
                return False
            if raw in (b".\r\n", b".\n"):
                break
            lines.append(raw[1:] if raw.startswith(b"..") else raw)
        rule = self._rule("DATA-END")
        if rule is not None:
            await reply(rule.code, rule.text)
            state.envelope_from, state.recipients = None, []
            return True
        assert state.envelope_from is not None
        self.received.append(
            Received(state.envelope_from, list(state.recipients), b"".join(lines), state.tls, state.user)
        )
        state.envelope_from, state.recipients = None, []
        with self._lock:
            hang = self._hang > 0
            self._hang -= 1 if hang else 0
        if hang:
            writer.transport.abort()
            return False
        await reply(250, "2.0.0 queued")
        return True
