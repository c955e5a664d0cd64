"""The two outside systems results are written to: an MLLP listener (waits for the ACK) and a FHIR server.

Each send returns the peer's answer code or raises `SendFailed` saying whether trying again can help:
an AE/AR (or CE/CR) ACK and an HTTP 4xx are the receiver's considered refusal, so they are permanent
and their reason is kept; a refused or dropped connection, a timeout, an answer that is not an ACK,
HTTP 408/429 and 5xx are transient and retried with backoff.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from backend.integration.send import ack_code, send_all

ACCEPTED = {"AA", "CA"}
HTTP_TRANSIENT = {408, 425, 429}


class SendFailed(Exception):
    def __init__(self, result: str, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.result = result[:16]
        self.reason = reason[:500]
        self.permanent = permanent


def _ack_reason(ack: bytes, codec: str) -> str:
    """MSA-3 and ERR's text of a NAK: the receiver's own words, for the delivery log."""
    text = ack.decode(codec, errors="replace")
    parts: list[str] = []
    for line in text.replace("\n", "\r").split("\r"):
        fields = line.split(line[3:4]) if len(line) > 3 else []
        if line.startswith("MSA") and len(fields) > 3 and fields[3]:
            parts.append(fields[3])
        if line.startswith("ERR"):
            where = fields[2] if len(fields) > 2 else ""
            said = fields[8] if len(fields) > 8 else ""
            parts.append(" ".join(p for p in (where, said) if p))
    return "; ".join(p for p in parts if p) or "no reason given"


def send_mllp(host: str, port: int, message: bytes, *, codec: str, control_id: str, timeout: float) -> str:
    """Send one message and wait for its ACK; the ACK's code, or SendFailed."""
    try:
        _, ack = next(iter(send_all(host, port, [message], timeout=timeout)))
    except TimeoutError:
        raise SendFailed("timeout", f"no ACK within {timeout:g} s", permanent=False) from None
    except (ConnectionError, OSError) as exc:
        raise SendFailed("connection", f"connection failed: {type(exc).__name__}", permanent=False) from None
    code = ack_code(ack)
    if code in ACCEPTED:
        answered = _msa_control_id(ack)
        if answered and answered != control_id:
            raise SendFailed(code, f"the ACK answers {answered[:40]}, not {control_id}", permanent=False)
        return code
    if code in {"AE", "AR", "CE", "CR"}:
        raise SendFailed(code, _ack_reason(ack, codec), permanent=True)
    raise SendFailed("no ACK", "the answer was not an HL7 ACK", permanent=False)


def _msa_control_id(ack: bytes) -> str:
    for line in ack.replace(b"\n", b"\r").split(b"\r"):
        if line.startswith(b"MSA"):
            fields = line.split(line[3:4])
            return fields[2].decode("latin-1") if len(fields) > 2 else ""
    return ""


def post_fhir(base_url: str, bundle: dict[str, Any], *, token: str | None, timeout: float) -> str:
    """POST a transaction Bundle to the base URL; the HTTP status as text, or SendFailed."""
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        # trust_env off: a proxy from the environment must not see patient data by accident
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            reply = client.post(base_url.rstrip("/"), content=json.dumps(bundle), headers=headers)
    except httpx.TimeoutException:
        raise SendFailed("timeout", f"no answer within {timeout:g} s", permanent=False) from None
    except httpx.HTTPError as exc:
        raise SendFailed("connection", f"connection failed: {type(exc).__name__}", permanent=False) from None
    status = reply.status_code
    if 200 <= status < 300:
        return str(status)
    reason = _outcome_text(reply)
    permanent = 400 <= status < 500 and status not in HTTP_TRANSIENT
    raise SendFailed(str(status), f"HTTP {status}: {reason}", permanent=permanent)


def _outcome_text(reply: httpx.Response) -> str:
    """The OperationOutcome's diagnostics when the server sent one, else the reason phrase."""
    try:
        body = reply.json()
    except ValueError:
        return reply.reason_phrase
    issues = body.get("issue", []) if isinstance(body, dict) else []
    texts = [str(i.get("diagnostics") or i.get("details", {}).get("text") or "") for i in issues]
    return "; ".join(t for t in texts if t) or reply.reason_phrase
