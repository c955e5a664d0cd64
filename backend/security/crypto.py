"""Field encryption (AES-GCM) and keyed blind indexes (HMAC-SHA256) for identifiers at rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"


class DecryptionError(Exception):
    """A stored value could not be decrypted with the configured key (wrong key or tampering)."""


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


def derive_key(master: bytes, info: bytes) -> bytes:
    """A 32-byte key for one purpose (`info`) from a master key; keys for other purposes stay unrelated."""
    return _derive(master, info)


def key_fingerprint(key: bytes) -> str:
    """A short public name for a key (which key made this archive?) that reveals nothing about it."""
    return _derive(key, b"careloop/key-fingerprint/v1").hex()[:16]


class FieldCipher:
    """Encrypts one column's values; the column kind is bound in as associated data."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("master key must be 32 bytes")
        self._aead = AESGCM(_derive(master_key, b"careloop/field-encryption/v1"))
        self._index_key = _derive(master_key, b"careloop/blind-index/v1")

    def encrypt(self, kind: str, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), kind.encode("ascii"))
        return f"{VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, kind: str, token: str) -> str:
        version, _, body = token.partition(":")
        if version != VERSION:
            raise DecryptionError(f"unknown ciphertext version {version!r}")
        raw = base64.urlsafe_b64decode(body)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], kind.encode("ascii")).decode("utf-8")
        except InvalidTag as exc:
            raise DecryptionError(f"{kind} value failed authentication") from exc

    def seal(self, kind: str, data: bytes) -> bytes:
        """Encrypt a blob (a patient's image or voice note) with the same key, `kind` as associated data."""
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data, kind.encode("ascii"))

    def unseal(self, kind: str, blob: bytes) -> bytes:
        try:
            return self._aead.decrypt(blob[:12], blob[12:], kind.encode("ascii"))
        except InvalidTag as exc:
            raise DecryptionError(f"{kind} blob failed authentication") from exc

    def blind_index(self, kind: str, normalised: str) -> str:
        """Deterministic keyed digest so equal values can be found without storing them."""
        mac = hmac.new(self._index_key, f"{kind}\x00{normalised}".encode(), hashlib.sha256)
        return mac.hexdigest()[:40]


@lru_cache(maxsize=4)
def cipher_for(master_key: bytes) -> FieldCipher:
    return FieldCipher(master_key)


def current_cipher() -> FieldCipher:
    from backend.app.settings import get_settings

    return cipher_for(get_settings().data_key_bytes)
