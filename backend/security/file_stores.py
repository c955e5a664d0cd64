"""The sealed files that no row names, found by their file names: import reconciliation reports and
patients' data exports, each sealed with the field key under a kind made from its job's id.

Key rotation re-seals them (backend/security/rotation.py) and `careloop backup` carries their folders
(backend/backup/service.py). Files are listed in name order, so a walk resumes after the last name it
finished. A file whose name fits no pattern (an import's upload, a dry run's plan) is not sealed and is
left alone here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from backend.app.settings import get_settings
from backend.security.media_keys import MediaFile

CHUNK = 500


def _report_kind(match: re.Match[str]) -> str:
    from backend.imports.reconcile import report_kind

    return report_kind(int(match[1]))


def _export_kind(match: re.Match[str]) -> str:
    from backend.privacy.export import seal_kind

    return seal_kind(int(match[1]), match[2])


@dataclass(frozen=True)
class FileStore:
    name: str
    folder: Callable[[], Path]
    pattern: re.Pattern[str]  # a sealed file's whole name
    kind: Callable[[re.Match[str]], str]  # the associated data it is sealed with

    def files_after(self, after: str, limit: int = CHUNK) -> list[MediaFile]:
        """Up to `limit` sealed files whose names sort after `after`, in name order."""
        return list(_take(self._matching(after), limit))

    def _matching(self, after: str) -> Iterator[MediaFile]:
        folder = self.folder()
        if not folder.is_dir():
            return
        for path in sorted(folder.iterdir()):
            match = self.pattern.fullmatch(path.name)
            if match and path.name > after and path.is_file():
                yield MediaFile(self.name, int(match[1]), path.name, self.kind(match))


def _take(found: Iterator[MediaFile], limit: int) -> Iterator[MediaFile]:
    for n, item in enumerate(found):
        if n >= limit:
            return
        yield item


STORES = (
    FileStore(
        "import_reports",
        lambda: get_settings().import_dir,
        re.compile(r"reconciliation-(\d+)\.xlsx"),
        _report_kind,
    ),
    FileStore(
        "data_exports",
        lambda: get_settings().data_export_dir,
        re.compile(r"export-(\d+)\.(\w+)\.sealed"),
        _export_kind,
    ),
)


def count_files() -> int:
    return sum(len(store.files_after("", limit=10**9)) for store in STORES)
