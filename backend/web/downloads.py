"""Files staff open from patients (media, case evidence): always a download, never a page of ours.

A patient's upload, or the content type a provider reported for it, may be HTML or script; served inline
from our origin it would run with our cookies under `script-src 'self'`. So every such file goes out as an
attachment, with nosniff, a content type from a short list of media types (anything else is
`application/octet-stream`) and a sandboxing CSP in case a browser renders it anyway. `<img>` and
`<audio>` elements still play them: Content-Disposition concerns navigation only. The spreadsheets staff
export from lists go out as attachments too (`spreadsheet`)."""

from __future__ import annotations

import mimetypes
from urllib.parse import quote

from fastapi import Response

SAFE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "audio/amr",
        "audio/speex",
        "audio/mpeg",
        "audio/ogg",
        "audio/wav",
        "audio/mp4",
        "video/mp4",
        "video/3gpp",
        "application/pdf",
    }
)
SANDBOX_CSP = "sandbox; default-src 'none'"


def safe_type(declared: str | None, allowed: frozenset[str] = SAFE_TYPES) -> str:
    kind = (declared or "").split(";", 1)[0].strip().lower()
    return kind if kind in allowed else "application/octet-stream"


def file_response(
    data: bytes, declared_type: str | None, filename: str, *, allowed: frozenset[str] = SAFE_TYPES
) -> Response:
    """`allowed`: the types this kind of file may be served as (a provider's word is not enough)."""
    kind = safe_type(declared_type, allowed)
    if "." not in filename:
        filename += mimetypes.guess_extension(kind) or ".bin"
    return Response(
        data,
        media_type=kind,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": SANDBOX_CSP,
            "Cache-Control": "no-store",
        },
    )


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def spreadsheet(data: bytes, filename: str) -> Response:
    """An exported .xlsx workbook as a download named `filename` (ASCII: the name is the list's, not
    anything a patient typed)."""
    return Response(
        data, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
