"""Why a backup or a restore was refused; each says what to do, and none leaves the target half-changed."""

from __future__ import annotations


class BackupError(Exception):
    """A backup or restore that cannot go on; the message is for the person running it."""


class WrongKey(BackupError):
    """The archive was sealed with another backup key."""


class DamagedArchive(BackupError):
    """The archive is corrupted or truncated (authentication or a checksum failed)."""


class NewerSchema(BackupError):
    """The archive's schema revision is unknown to this CareLoop (made by a newer version)."""


class TargetNotEmpty(BackupError):
    """The database or media folder to restore into already holds something."""
