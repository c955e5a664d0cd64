"""Field encryption and blind indexes."""

from __future__ import annotations

import base64
import os

import pytest

from backend.security.crypto import DecryptionError, FieldCipher


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher(bytes(range(32)))


def test_round_trip_and_fresh_nonce_each_time(cipher: FieldCipher) -> None:
    a, b = cipher.encrypt("phone", "+8613800138000"), cipher.encrypt("phone", "+8613800138000")
    assert a != b and "13800138000" not in a
    assert cipher.decrypt("phone", a) == "+8613800138000" == cipher.decrypt("phone", b)


def test_value_moved_to_another_column_fails(cipher: FieldCipher) -> None:
    token = cipher.encrypt("phone", "+8613800138000")
    with pytest.raises(DecryptionError):
        cipher.decrypt("mrn", token)


@pytest.mark.parametrize("position", [0, 12, 15, -1])  # nonce, ciphertext, its last byte, the tag
def test_tampered_value_fails(cipher: FieldCipher, position: int) -> None:
    # Flip a bit of the sealed bytes, not a base64 character: the last character of a padded token
    # carries padding bits, and changing only those decodes to the same bytes (a 1-in-16 flaky test).
    version, _, body = cipher.encrypt("mrn", "MRN1").partition(":")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[position] ^= 0x01
    with pytest.raises(DecryptionError):
        cipher.decrypt("mrn", f"{version}:{base64.urlsafe_b64encode(bytes(raw)).decode('ascii')}")


def test_other_key_cannot_decrypt(cipher: FieldCipher) -> None:
    with pytest.raises(DecryptionError):
        FieldCipher(os.urandom(32)).decrypt("mrn", cipher.encrypt("mrn", "MRN1"))


def test_unknown_version_is_refused(cipher: FieldCipher) -> None:
    with pytest.raises(DecryptionError, match="version"):
        cipher.decrypt("mrn", "v9:abc")


def test_blind_index_is_stable_keyed_and_per_kind(cipher: FieldCipher) -> None:
    assert cipher.blind_index("phone", "+86138") == cipher.blind_index("phone", "+86138")
    assert cipher.blind_index("phone", "+86138") != cipher.blind_index("mrn", "+86138")
    assert cipher.blind_index("phone", "+86138") != FieldCipher(os.urandom(32)).blind_index("phone", "+86138")


def test_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        FieldCipher(b"short")
