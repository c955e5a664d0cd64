"""Field encryption and blind indexes."""

from __future__ import annotations

import base64
import os

import pytest

from backend.security.crypto import Algorithm, DecryptionError, FieldCipher


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


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_each_algorithm_round_trips_binds_the_kind_and_refuses_tampering(algorithm: Algorithm) -> None:
    ring = FieldCipher(bytes(range(32)), algorithm=algorithm)
    token = ring.encrypt("message_text", "胸口痛 chest pain")
    assert token.startswith(ring.current_prefix + ":") and "chest" not in token
    assert ring.decrypt("message_text", token) == "胸口痛 chest pain"
    with pytest.raises(DecryptionError):
        ring.decrypt("case_text", token)  # moved to another column
    prefix, _, body = token.partition(":")
    raw = bytearray(base64.urlsafe_b64decode(body))
    for position in (0, len(raw) // 2, len(raw) - 1):  # IV/nonce, ciphertext, tag/MAC
        changed = raw.copy()
        changed[position] ^= 1
        with pytest.raises(DecryptionError):
            ring.decrypt("message_text", f"{prefix}:{base64.urlsafe_b64encode(bytes(changed)).decode()}")
    blob = ring.seal("media", b"\x89PNG...")
    assert ring.unseal("media", blob) == b"\x89PNG..." and ring.reseal("media", blob) is None


def test_a_ring_reads_old_keys_legacy_tokens_and_refuses_keys_it_lacks() -> None:
    old, new = os.urandom(32), os.urandom(32)
    before = FieldCipher(old)
    legacy_body = base64.urlsafe_b64encode(before._current.seal(b"A100", b"mrn")).decode()
    old_token = before.encrypt("mrn", "A100")
    ring = FieldCipher(new, previous=[old], algorithm=Algorithm.SM4, index_key=old)
    assert ring.decrypt("mrn", old_token) == "A100"
    assert ring.decrypt("mrn", f"v1:{legacy_body}") == "A100"  # the format before key names
    renewed = ring.reencrypt("mrn", old_token)
    assert renewed is not None and ring.is_current(renewed) and ring.reencrypt("mrn", renewed) is None
    assert ring.blind_index("mrn", "A100") == before.blind_index("mrn", "A100")  # the index key stays
    with pytest.raises(DecryptionError, match="not in the ring"):
        FieldCipher(new).decrypt("mrn", old_token)
    old_blob = before.seal("media", b"voice")
    resealed = ring.reseal("media", old_blob)
    assert resealed is not None and ring.unseal("media", resealed) == b"voice"
    assert ring.blob_key("media", resealed) == ring.current_prefix
