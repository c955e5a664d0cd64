"""Field encryption at rest with a key ring (AES-GCM or SM4), and keyed blind indexes (HMAC-SHA256).

A ring has one current key, which encrypts, and older keys, which still decrypt: every token names the key
and algorithm that sealed it (`v2.<algorithm>.<key id>:<base64>`), so values written before a rotation keep
opening while the re-encryption job (backend/security/rotation.py) rewrites them with the current key.
Tokens of the first format (`v1:`, AES-GCM, no key id) are still read, with each key of the ring tried.

Blind indexes use a key of their own that rotation does not change: an index is a lookup key, and
re-indexing every row while lookups run would miss rows between the two states.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

LEGACY_VERSION = "v1"
VERSION = "v2"


class Algorithm(StrEnum):
    """The field cipher a key ring writes with. Both are authenticated; tokens name theirs."""

    AES_GCM = "aes-gcm"
    # SM4 in CTR mode with HMAC-SM3 over everything (encrypt-then-MAC): the national-algorithm suite.
    # `cryptography` has no SM4 AEAD class; SM4-GCM through the generic Cipher API depends on the OpenSSL
    # it was built against, while CTR and HMAC-SM3 are available in every build that has SM4 at all.
    SM4 = "sm4"


_TOKEN_ALG = {Algorithm.AES_GCM: "gcm", Algorithm.SM4: "sm4"}
_ALG_OF_TOKEN = {v: k for k, v in _TOKEN_ALG.items()}


class DecryptionError(Exception):
    """A stored value could not be decrypted with the configured keys (wrong key or tampering)."""


@lru_cache(maxsize=64)
def _derive(master: bytes, info: bytes, length: int = 32) -> bytes:
    # remembered: a pure function of its arguments, and the audit key is derived for every audit row (an
    # import's chunk of 1,000 visits spent more time deriving it than computing the rows' MACs)
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master)


def key_id(master_key: bytes) -> str:
    """A short public name for a key (a keyed digest: it tells keys apart and reveals nothing of them)."""
    return _derive(master_key, b"careloop/key-id/v1", 4).hex()


class _Sealer:
    """One key under one algorithm: seals and opens bytes with `aad` bound in."""

    def __init__(self, master_key: bytes, algorithm: Algorithm) -> None:
        self.algorithm = algorithm
        self.key_id = key_id(master_key)
        self.prefix = f"{VERSION}.{_TOKEN_ALG[algorithm]}.{self.key_id}"
        # the AES-GCM key is the one the first format used, so `v1:` tokens open with the same sealer
        self._aead = AESGCM(_derive(master_key, b"careloop/field-encryption/v1"))
        self._sm4_key = _derive(master_key, b"careloop/field-encryption/sm4", 16)
        self._mac_key = _derive(master_key, b"careloop/field-mac/sm3")

    def seal(self, data: bytes, aad: bytes) -> bytes:
        if self.algorithm is Algorithm.AES_GCM:
            nonce = os.urandom(12)
            return nonce + self._aead.encrypt(nonce, data, aad)
        iv = os.urandom(16)
        encryptor = Cipher(algorithms.SM4(self._sm4_key), modes.CTR(iv)).encryptor()
        body = iv + encryptor.update(data) + encryptor.finalize()
        return body + self._mac(aad, body)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        """Raises InvalidTag when the blob was not sealed by this key (or was changed)."""
        if self.algorithm is Algorithm.AES_GCM:
            return self._aead.decrypt(blob[:12], blob[12:], aad)
        body, tag = blob[:-32], blob[-32:]
        if len(body) < 16:
            raise InvalidTag
        check = crypto_hmac.HMAC(self._mac_key, hashes.SM3())
        check.update(self._mac_input(aad, body))
        try:
            check.verify(tag)
        except InvalidSignature as exc:
            raise InvalidTag from exc
        decryptor = Cipher(algorithms.SM4(self._sm4_key), modes.CTR(body[:16])).decryptor()
        return decryptor.update(body[16:]) + decryptor.finalize()

    def _mac(self, aad: bytes, body: bytes) -> bytes:
        mac = crypto_hmac.HMAC(self._mac_key, hashes.SM3())
        mac.update(self._mac_input(aad, body))
        return mac.finalize()

    @staticmethod
    def _mac_input(aad: bytes, body: bytes) -> bytes:
        # the associated data's length first, so (aad, body) pairs cannot be re-split into another pair
        return len(aad).to_bytes(4, "big") + aad + body


@dataclass(frozen=True)
class RingSpec:
    """A ring's parts: the current key, older keys that still decrypt, the algorithm, the index key."""

    current: bytes
    previous: tuple[bytes, ...] = ()
    algorithm: Algorithm = Algorithm.AES_GCM
    index_key: bytes | None = None


def derive_key(master: bytes, info: bytes) -> bytes:
    """A 32-byte key for one purpose (`info`) from a master key; keys for other purposes stay unrelated."""
    return _derive(master, info)


def key_fingerprint(key: bytes) -> str:
    """A short public name for a key (which key made this archive?) that reveals nothing about it."""
    return _derive(key, b"careloop/key-fingerprint/v1").hex()[:16]


class FieldCipher:
    """Encrypts one column's values; the column kind is bound in as associated data.

    `FieldCipher(key)` is a ring of one AES-GCM key whose blind indexes are derived from that key (how
    every installation began); `previous`, `algorithm` and `index_key` make the ring rotation needs."""

    def __init__(
        self,
        master_key: bytes,
        *,
        previous: Sequence[bytes] = (),
        algorithm: Algorithm = Algorithm.AES_GCM,
        index_key: bytes | None = None,
    ) -> None:
        for key in (master_key, *previous, *([index_key] if index_key is not None else [])):
            if len(key) != 32:
                raise ValueError("master key must be 32 bytes")
        self.algorithm = algorithm
        self._current = _Sealer(master_key, algorithm)
        # older keys are tried under both algorithms: a rotation may change the algorithm as well
        self._by_prefix: dict[str, _Sealer] = {}
        self._legacy: list[_Sealer] = []
        for key in (master_key, *previous):
            for alg in Algorithm:
                sealer = self._current if (key == master_key and alg is algorithm) else _Sealer(key, alg)
                self._by_prefix.setdefault(sealer.prefix, sealer)
                if alg is Algorithm.AES_GCM:
                    self._legacy.append(sealer)
        self._index_key = _derive(
            index_key if index_key is not None else master_key, b"careloop/blind-index/v1"
        )

    @property
    def current_prefix(self) -> str:
        """The prefix of every token the current key writes; anything else is due for re-encryption."""
        return self._current.prefix

    def is_current(self, token: str) -> bool:
        return token.startswith(self._current.prefix + ":")

    def encrypt(self, kind: str, plaintext: str) -> str:
        sealed = self._current.seal(plaintext.encode("utf-8"), kind.encode("ascii"))
        return f"{self._current.prefix}:{base64.urlsafe_b64encode(sealed).decode('ascii')}"

    def decrypt(self, kind: str, token: str) -> str:
        prefix, _, body = token.partition(":")
        if prefix == LEGACY_VERSION:
            candidates = self._legacy
        elif prefix in self._by_prefix:
            candidates = [self._by_prefix[prefix]]
        elif prefix.startswith(VERSION + "."):
            raise DecryptionError(f"{kind} value was sealed by a key not in the ring ({prefix!r})")
        else:
            raise DecryptionError(f"unknown ciphertext version {prefix[:16]!r}")
        try:
            raw = base64.urlsafe_b64decode(body)
        except ValueError as exc:
            raise DecryptionError(f"{kind} value is not base64") from exc
        for sealer in candidates:
            try:
                return sealer.open(raw, kind.encode("ascii")).decode("utf-8")
            except (InvalidTag, ValueError):
                continue
        raise DecryptionError(f"{kind} value failed authentication")

    def reencrypt(self, kind: str, token: str) -> str | None:
        """The token under the current key, or None when it already is."""
        return None if self.is_current(token) else self.encrypt(kind, self.decrypt(kind, token))

    def seal(self, kind: str, data: bytes) -> bytes:
        """Seal a blob (a patient's image or voice note), `kind` as associated data."""
        return self._current.seal(data, kind.encode("ascii"))

    def unseal(self, kind: str, blob: bytes) -> bytes:
        # blobs carry no key name (the format predates the ring): every key and algorithm is tried
        for sealer in [self._current, *(s for s in self._by_prefix.values() if s is not self._current)]:
            try:
                return sealer.open(blob, kind.encode("ascii"))
            except (InvalidTag, ValueError):
                continue
        raise DecryptionError(f"{kind} blob failed authentication")

    def _blob_sealer(self, kind: str, blob: bytes) -> _Sealer | None:
        for sealer in [self._current, *(s for s in self._by_prefix.values() if s is not self._current)]:
            try:
                sealer.open(blob, kind.encode("ascii"))
            except (InvalidTag, ValueError):
                continue
            return sealer
        return None

    def blob_key(self, kind: str, blob: bytes) -> str | None:
        """The prefix naming the key and algorithm that sealed a blob, None when none of the ring's does."""
        sealer = self._blob_sealer(kind, blob)
        return None if sealer is None else sealer.prefix

    def reseal(self, kind: str, blob: bytes) -> bytes | None:
        """The blob sealed under the current key, or None when it already is."""
        if self._blob_sealer(kind, blob) is self._current:
            return None
        return self.seal(kind, self.unseal(kind, blob))

    def blind_index(self, kind: str, normalised: str) -> str:
        """Deterministic keyed digest so equal values can be found without storing them."""
        mac = hmac.new(self._index_key, f"{kind}\x00{normalised}".encode(), hashlib.sha256)
        return mac.hexdigest()[:40]


@lru_cache(maxsize=8)
def cipher_for(master_key: bytes, spec: RingSpec | None = None) -> FieldCipher:
    if spec is None:
        return FieldCipher(master_key)
    return FieldCipher(
        spec.current, previous=spec.previous, algorithm=spec.algorithm, index_key=spec.index_key
    )


def current_cipher() -> FieldCipher:
    from backend.app.settings import get_settings

    settings = get_settings()
    return cipher_for(settings.data_key_bytes, settings.key_ring)
