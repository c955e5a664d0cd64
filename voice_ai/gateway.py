"""Telephony gateways behind one small Protocol: place_call, hang_up, parse_status (and recordings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from voice_ai.call_events import CallState


class GatewayError(RuntimeError):
    """The gateway refused or could not be reached; `permanent` says whether a retry can help."""

    def __init__(self, reason: str, *, permanent: bool, code: str | None = None) -> None:
        super().__init__(reason)
        self.permanent, self.code = permanent, code


class MalformedCallback(ValueError):
    """A status or recording callback without the fields every such callback has."""


class GatewayName(StrEnum):
    """Which gateway placed a call: stored with the call, with the provider's id for it."""

    TWILIO = "twilio"
    SIMULATED = "simulated"  # development, tests and benches
    SIP = "sip"  # a SIP trunk (carrier or hospital PBX), voice_ai/gateway_sip.py


class AnsweredBy(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"  # machine_start, machine_end_beep/silence/other, fax
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CallRequest:
    to: str  # E.164; never logged
    call_ref: str  # our call id, carried back on every callback and in the stream's parameters
    answer_url: str  # where the gateway asks what to do once answered (TwiML for Twilio)
    status_url: str
    recording_url: str | None = None  # None: do not record at the gateway
    ring_seconds: int = 30
    caller_id: str | None = None  # E.164 the patient sees (the campus's); None: the gateway's default


@dataclass(frozen=True, slots=True)
class PlacedCall:
    provider_id: str  # Twilio's CallSid
    state: CallState


@dataclass(frozen=True, slots=True)
class CallStatus:
    """One status callback: the call's new state, who answered, how long it lasted."""

    provider_id: str
    state: CallState
    raw_status: str  # the gateway's own word (queued, initiated, ringing, in-progress, ...)
    answered_by: AnsweredBy | None = None
    duration_seconds: int | None = None
    sequence: int | None = None  # callbacks may arrive out of order


@dataclass(frozen=True, slots=True)
class RecordingReady:
    provider_id: str  # the call
    recording_id: str
    url: str  # where the gateway keeps it (staff play it from there, authenticated)
    duration_seconds: int | None


class Gateway(Protocol):
    name: GatewayName

    def place_call(self, request: CallRequest) -> PlacedCall:
        """Ask the gateway to dial. Blocking (a vendor HTTP call): run it in a thread pool."""
        ...

    def hang_up(self, provider_id: str) -> None: ...

    def parse_status(self, params: Mapping[str, str]) -> CallStatus:
        """A status callback's fields (already signature-checked by the route)."""
        ...

    def parse_recording(self, params: Mapping[str, str]) -> RecordingReady: ...
