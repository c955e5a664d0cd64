"""Row ids read from text: ASCII digits within the range of the id columns (PostgreSQL `integer`).

`str.isdigit` accepts "１２３", "١٢٣" and "²" (the last then breaks `int`), and SQLite cannot bind an int
of 2**63 or more: text checked that way used to reach the driver and end in a 500."""

from __future__ import annotations

MAX_ID = 2**31 - 1


def parse_id(text: str | None) -> int | None:
    """An id written in ASCII digits and within MAX_ID, or None."""
    text = (text or "").strip()
    if not text or not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_ID)):
        return None
    value = int(text)
    return value if value <= MAX_ID else None
