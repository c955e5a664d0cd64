"""DSN samples: three of RFC 3464's own examples (section 10), and a bounce as a Postfix MX writes one, with
the recipient, status and quoted Message-ID filled in per test."""

from __future__ import annotations

from pathlib import Path
from string import Template

HERE = Path(__file__).parent


def sample(name: str) -> bytes:
    return (HERE / name).read_bytes().replace(b"\n", b"\r\n")


def bounce(*, to: str, recipient: str, status: str, message_id: str) -> bytes:
    text = Template((HERE / "bounce_template.eml").read_text()).substitute(
        to=to, recipient=recipient, status=status, message_id=message_id
    )
    return text.replace("\n", "\r\n").encode()
