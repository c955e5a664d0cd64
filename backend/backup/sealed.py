"""The archive's encrypted envelope: AES-256-GCM in authenticated chunks, streamed in and out.

Layout: an 8-byte magic, the backup key's fingerprint (16 hex characters), a random 16-byte salt, then
chunks of `[4-byte length][ciphertext and tag]`. Each archive gets its own AES key (HKDF of the backup
key with the salt); a chunk's nonce is its number and a flag marking the last chunk, and the header is
bound in as associated data. A changed byte fails that chunk's tag; chunks cut from the end are missed
because no chunk carried the last-chunk flag; reordered chunks fail because the nonce is their number.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backend.backup.errors import DamagedArchive, WrongKey
from backend.security.crypto import key_fingerprint

MAGIC = b"CLBACK01"
CHUNK = 4 * 1024 * 1024
HEADER_LENGTH = len(MAGIC) + 16 + 16
TAG = 16


def _aead(key: bytes, salt: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"careloop/backup-archive/v1")
    return AESGCM(derived.derive(key))


def _nonce(index: int, last: bool) -> bytes:
    return struct.pack(">QI", index, 1 if last else 0)


def seal_file(key: bytes, source: Path, target: BinaryIO) -> None:
    """Encrypt `source` into `target` chunk by chunk (memory stays at one chunk)."""
    salt = os.urandom(16)
    header = MAGIC + key_fingerprint(key).encode("ascii") + salt
    aead = _aead(key, salt)
    target.write(header)
    size = source.stat().st_size
    with source.open("rb") as plain:
        index, done = 0, 0
        while True:
            block = plain.read(CHUNK)
            done += len(block)
            last = done >= size
            sealed = aead.encrypt(_nonce(index, last), block, header)
            target.write(struct.pack(">I", len(sealed)) + sealed)
            index += 1
            if last:
                return


def archive_key_id(source: BinaryIO) -> str:
    """The fingerprint of the key an archive was sealed with (to say which key a restore needs)."""
    header = source.read(HEADER_LENGTH)
    if len(header) < HEADER_LENGTH or not header.startswith(MAGIC):
        raise DamagedArchive("not a CareLoop backup archive (its first bytes are not an archive header)")
    return header[len(MAGIC) : len(MAGIC) + 16].decode("ascii", "replace")


def open_chunks(key: bytes, source: BinaryIO) -> Iterator[bytes]:
    """Decrypt and yield the chunks in order; raise before yielding anything unauthenticated."""
    header = source.read(HEADER_LENGTH)
    if len(header) < HEADER_LENGTH or not header.startswith(MAGIC):
        raise DamagedArchive("not a CareLoop backup archive (its first bytes are not an archive header)")
    made_with = header[len(MAGIC) : len(MAGIC) + 16].decode("ascii", "replace")
    if made_with != key_fingerprint(key):
        raise WrongKey(
            f"this archive was sealed with backup key {made_with}; the key given is {key_fingerprint(key)}"
        )
    aead = _aead(key, header[-16:])
    index = 0
    while True:
        length_bytes = source.read(4)
        if len(length_bytes) < 4:
            raise DamagedArchive(
                f"the archive is truncated: it ends after chunk {index} without its last chunk"
            )
        (length,) = struct.unpack(">I", length_bytes)
        if length < TAG or length > CHUNK + TAG:
            raise DamagedArchive(f"the archive is corrupted: chunk {index} has an impossible length")
        sealed = source.read(length)
        if len(sealed) < length:
            raise DamagedArchive(f"the archive is truncated inside chunk {index}")
        for last in (False, True):
            try:
                block = aead.decrypt(_nonce(index, last), sealed, header)
                break
            except InvalidTag:
                continue
        else:
            raise DamagedArchive(f"the archive is corrupted: chunk {index} failed authentication")
        yield block
        index += 1
        if last:
            if source.read(1):
                raise DamagedArchive("the archive is corrupted: bytes follow its last chunk")
            return


def unseal_file(key: bytes, source: Path, target: Path) -> None:
    """Decrypt a whole archive into `target`; on any failure `target` is removed and the error raised."""
    try:
        with source.open("rb") as sealed, target.open("wb") as plain:
            for block in open_chunks(key, sealed):
                plain.write(block)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
