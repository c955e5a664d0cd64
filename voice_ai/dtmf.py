"""DTMF: keys to an item's answer (from its spoken form) and Goertzel detection of in-band tones in PCM."""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

from questionnaires.channels import Keypad, SpokenForm

ROWS = (697, 770, 852, 941)
COLS = (1209, 1336, 1477, 1633)
KEYS = ("123A", "456B", "789C", "*0#D")


@dataclass(frozen=True, slots=True)
class Keyed:
    payload: str  # what accept(payload=...) takes: an option code, yes/no, a number, an ISO date


@dataclass(frozen=True, slots=True)
class BadKeys:
    keys: str


@dataclass(slots=True)
class KeyCollector:
    """Keys pressed for one item: a single key for options, digits then # for numbers and dates."""

    form: SpokenForm
    typed: str = field(default="")

    def press(self, key: str) -> Keyed | BadKeys | None:
        """None while more keys are expected."""
        if self.form.keypad is None:
            code = self.form.dtmf.get(key)
            return Keyed(code) if code is not None else BadKeys(key)
        pad = self.form.keypad
        if key == pad.terminator and not self.typed:
            return None  # a # after an entry that completed itself by length
        if key != pad.terminator:
            self.typed += key
            if len(self.typed) < pad.max_digits + (1 if pad.decimal_key else 0):
                return None
        typed, self.typed = self.typed, ""
        payload = keypad_payload(typed, pad)
        return Keyed(payload) if payload is not None else BadKeys(typed)


def keypad_payload(typed: str, pad: Keypad) -> str | None:
    if pad.date_order is not None:
        if len(typed) != 8 or not typed.isdigit():
            return None
        parts = dict(zip(pad.date_order, _split(typed, pad.date_order), strict=True))
        return f"{parts['Y']}-{parts['M']}-{parts['D']}"
    number = typed.replace(pad.decimal_key, ".") if pad.decimal_key else typed
    if not number or not all(c.isdigit() or c == "." for c in number) or number.count(".") > 1:
        return None
    return number.strip(".") if number != "." else None


def _split(typed: str, order: str) -> tuple[str, str, str]:
    widths = [4 if part == "Y" else 2 for part in order]
    a, b = widths[0], widths[0] + widths[1]
    return typed[:a], typed[a:b], typed[b:]


def _power(samples: array[int], freq: float, rate: int) -> float:
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


class ToneDetector:
    """In-band DTMF in 16-bit PCM frames (the simulated gateway's caller; Twilio sends dtmf events).

    A key is reported once, when its tone pair has held for `hold` consecutive frames."""

    def __init__(self, rate: int = 8000, hold: int = 2, min_level: float = 1e4) -> None:
        self.rate, self.hold, self.min_level = rate, hold, min_level
        self._last: str | None = None
        self._count = 0

    def _key(self, frame: bytes) -> str | None:
        samples = array("h", frame)
        if not samples:
            return None
        rows = [_power(samples, f, self.rate) for f in ROWS]
        cols = [_power(samples, f, self.rate) for f in COLS]
        r, c = max(range(4), key=rows.__getitem__), max(range(4), key=cols.__getitem__)
        energy = sum(x * x for x in samples) * len(samples) / 2  # Goertzel power of a full-scale tone
        floor = self.min_level * len(samples) ** 2
        if rows[r] < floor or cols[c] < floor or rows[r] + cols[c] < 0.5 * energy:
            return None  # too quiet, or the two tones are not most of the signal (speech, noise)
        others = sorted(rows)[-2] + sorted(cols)[-2]
        return KEYS[r][c] if others < 0.1 * (rows[r] + cols[c]) else None

    def push(self, frame: bytes) -> str | None:
        key = self._key(frame)
        if key != self._last:
            self._last, self._count = key, 0
        self._count += 1
        return key if key is not None and self._count == self.hold else None


def tone(key: str, ms: int = 100, rate: int = 8000, amplitude: int = 8000) -> bytes:
    """16-bit PCM of a key's tone pair (for the simulated caller and tests)."""
    r = next(i for i, row in enumerate(KEYS) if key in row)
    c = KEYS[r].index(key)
    n = rate * ms // 1000
    low, high = 2 * math.pi * ROWS[r] / rate, 2 * math.pi * COLS[c] / rate
    samples = (int(amplitude * (math.sin(low * i) + math.sin(high * i)) / 2) for i in range(n))
    return array("h", samples).tobytes()
