"""MLLP over TLS, and the allow-list of sending addresses, on real sockets."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.backend.integration.hl7_peer import END, START, MllpPeer, adt
from tests.conftest import reset_caches

Address = tuple[str, int]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "careloop-hl7.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("careloop-hl7.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "hl7.pem", directory / "hl7.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_cert(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("CARELOOP_HL7_TLS_CERT", str(cert))
    monkeypatch.setenv("CARELOOP_HL7_TLS_KEY", str(key))
    reset_caches()
    return cert


def test_mllp_over_tls(tls_cert: Path, hl7_address: Address) -> None:
    context = ssl.create_default_context(cafile=str(tls_cert))
    with (
        socket.create_connection(hl7_address, timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="careloop-hl7.test") as tls,
    ):
        tls.sendall(START + adt("A01", "TLS1").encode() + END)
        reply = b""
        while END not in reply:
            reply += tls.recv(4096)
    assert b"MSA|AA|TLS1" in reply


def test_plain_mllp_to_a_tls_listener_gets_no_ack(tls_cert: Path, hl7_address: Address) -> None:
    with MllpPeer(*hl7_address, timeout=5) as peer, pytest.raises(OSError):
        peer.send(adt("A01", "PLAIN1"))


@pytest.fixture
def only_other_senders(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_HL7_ALLOWED_PEERS", '["10.20.0.0/16"]')
    reset_caches()


def test_sender_not_on_the_allow_list_is_disconnected(only_other_senders: None, hl7_address: Address) -> None:
    with MllpPeer(*hl7_address, timeout=5) as peer, pytest.raises(OSError):
        peer.send(adt("A01", "DENIED1"))
