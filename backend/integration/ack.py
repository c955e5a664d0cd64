"""Original-mode acknowledgements (ACK with MSA, and ERR naming the field) built as text. Pure.

ERR is written both ways: ERR-1 (v2.3/v2.4 "error code and location") and ERR-2/3/4 (v2.5 and
later: location, HL7 error code, severity), so every receiving engine finds the field it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from backend.integration.hl7_parse import ERROR_TEXT, Header, InvalidField


class AckCode:
    ACCEPT = "AA"
    ERROR = "AE"
    REJECT = "AR"


@dataclass(frozen=True, slots=True)
class AckAddress:
    """Who the ACK goes back to and what it answers (from the message, or defaults for junk)."""

    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    control_id: str = ""
    trigger: str = ""
    version: str = "2.5"
    processing_id: str = "P"

    @classmethod
    def of(cls, header: Header) -> AckAddress:
        return cls(
            sending_application=header.sending_application,
            sending_facility=header.sending_facility,
            receiving_application=header.receiving_application,
            receiving_facility=header.receiving_facility,
            control_id=header.control_id,
            trigger=header.trigger,
            version=header.version or "2.5",
            processing_id=header.processing_id or "P",
        )


_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\", "\r": " ", "\n": " "}


def escape(text: str) -> str:
    """Our text in an HL7 field (standard separators; the ACK always declares `|^~\\&`)."""
    return "".join(_ESCAPES.get(char, char) for char in text)


def _location(error: InvalidField) -> tuple[str, str]:
    """(ERR-1 form "PID^1^3", ERR-2 form "PID^1^3") for a segment and field position."""
    position = "" if error.position is None else str(error.position)
    located = f"{error.segment}^1^{position}" if position else f"{error.segment}^1"
    return located, located


def build_ack(
    address: AckAddress,
    code: str,
    *,
    text: str = "",
    error: InvalidField | None = None,
    ack_control_id: str,
    now: datetime | None = None,
    application: str = "CARELOOP",
) -> str:
    """An ACK message, segments ended by `\\r`, answering `address` with `code` (AA, AE or AR)."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")
    msh = "|".join(
        [
            "MSH",
            "^~\\&",
            escape(address.receiving_application or application),
            escape(address.receiving_facility),
            escape(address.sending_application),
            escape(address.sending_facility),
            stamp,
            "",
            f"ACK^{escape(address.trigger)}^ACK" if address.trigger else "ACK",
            escape(ack_control_id),
            escape(address.processing_id[:1] or "P"),
            escape(address.version),
        ]
    )
    msa = "|".join(["MSA", code, escape(address.control_id), escape(text[:80])])
    segments = [msh, msa]
    if error is not None:
        old_location, location = _location(error)
        label = ERROR_TEXT.get(error.code, "")
        coded = f"{error.code}&{escape(label)}&HL70357"
        segments.append(
            "|".join(
                [
                    "ERR",
                    f"{old_location}^{coded}",
                    location,
                    f"{error.code}^{escape(label)}^HL70357",
                    "E",
                    "",
                    "",
                    "",
                    escape(error.reason[:200]),
                ]
            )
        )
    return "\r".join(segments) + "\r"
