"""Telephone audio: G.711 mu-law to and from 16-bit PCM, band-limited resampling, 20 ms frames."""

from __future__ import annotations

import io
import math
import sys
import wave
from array import array
from collections.abc import Iterator
from functools import lru_cache
from operator import mul

# Tables instead of `audioop`: it warns on import since 3.11 (gone in 3.13), and our tests turn
# warnings into errors. Every conversion runs at C speed (bytes.translate, map over a bytes table).
TELEPHONE_RATE = 8000
ASR_RATE = 16000
FRAME_MS = 20
_BIAS = 0x84


def _decode_one(byte: int) -> int:
    u = ~byte & 0xFF
    magnitude = (((u & 0x0F) << 3) + _BIAS) << ((u & 0x70) >> 4)
    return _BIAS - magnitude if u & 0x80 else magnitude - _BIAS


def _encode_one(sample: int) -> int:
    # The reference encoder (Sun's g711.c, as audioop and SoX): 14-bit magnitude, biased by 33.
    value = sample >> 2
    mask = 0x7F if value < 0 else 0xFF
    value = min(-value if value < 0 else value, 8159) + 33
    segment = max(0, value.bit_length() - 6)  # segment ends: 0x3F, 0x7F, ... 0x1FFF
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask


_DECODED = [_decode_one(b) for b in range(256)]
_LOW = bytes(s & 0xFF for s in _DECODED)  # little-endian halves of each decoded sample, for translate
_HIGH = bytes((s >> 8) & 0xFF for s in _DECODED)
_ENCODE = bytes(_encode_one(s - 65536 if s >= 32768 else s) for s in range(65536))  # by unsigned sample


def _native(pcm: bytes) -> array[int]:
    samples = array("h", pcm)
    if sys.byteorder == "big":  # PCM on the wire and in WAV files is little-endian
        samples.byteswap()
    return samples


def _wire(samples: array[int]) -> bytes:
    if sys.byteorder == "big":
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def ulaw_to_pcm16(data: bytes) -> bytes:
    """mu-law bytes to 16-bit little-endian PCM at the same rate."""
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(_LOW)
    out[1::2] = data.translate(_HIGH)
    return bytes(out)


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    """16-bit little-endian PCM to mu-law bytes at the same rate (an odd trailing byte is dropped)."""
    unsigned = array("H", pcm[: len(pcm) // 2 * 2])
    if sys.byteorder == "big":
        unsigned.byteswap()
    return bytes(map(_ENCODE.__getitem__, unsigned))


@lru_cache(maxsize=16)
def _filter(src: int, dst: int) -> tuple[int, int, int, tuple[tuple[float, ...], ...]]:
    """(up, down, half width, one windowed-sinc tap row per phase) for src -> dst."""
    g = math.gcd(src, dst)
    up, down = dst // g, src // g
    cutoff = min(1.0, dst / src)  # of the input's Nyquist: below the output's when downsampling
    half = math.ceil(6 / cutoff)  # six zero crossings of the sinc each side
    rows = []
    for phase in range(up):
        frac = phase / up
        row = []
        for j in range(-half + 1, half + 1):
            d = j - frac  # distance of input sample k+j from the output instant k+frac
            x = cutoff * d
            sinc = 1.0 if x == 0 else math.sin(math.pi * x) / (math.pi * x)
            window = 0.5 + 0.5 * math.cos(math.pi * d / half) if abs(d) < half else 0.0  # Hann
            row.append(cutoff * sinc * window)
        rows.append(tuple(row))
    return up, down, half, tuple(rows)


class Resampler:
    """Streaming band-limited resampler for 16-bit PCM; chunks may be any length, state carries over."""

    def __init__(self, src: int, dst: int) -> None:
        self.src, self.dst = src, dst
        self._up, self._down, self._half, self._rows = _filter(src, dst)
        self._buf: list[int] = [0] * self._half  # zeros before the first sample
        self._base = -self._half  # input index of _buf[0]
        self._n = 0  # next output sample
        self._seen = 0  # input samples received

    def process(self, pcm: bytes) -> bytes:
        if self.src == self.dst:
            return pcm
        new = _native(pcm)
        self._buf.extend(new)
        self._seen += len(new)
        return self._run(limit=None)

    def flush(self) -> bytes:
        """The output still held back for lack of following input (treated as silence)."""
        if self.src == self.dst:
            return b""
        self._buf.extend([0] * self._half)
        return self._run(limit=self._seen)

    def _run(self, limit: int | None) -> bytes:
        up, down, half, rows, buf = self._up, self._down, self._half, self._rows, self._buf
        out = array("h")
        end = self._base + len(buf)
        while True:
            k, phase = divmod(self._n * down, up)
            if k + half >= end or (limit is not None and k >= limit):
                break
            start = k - half + 1 - self._base
            value = round(sum(map(mul, rows[phase], buf[start : start + 2 * half])))
            out.append(32767 if value > 32767 else -32768 if value < -32768 else value)
            self._n += 1
        keep_from = divmod(self._n * down, up)[0] - half + 1 - self._base
        if keep_from > 0:
            del buf[:keep_from]
            self._base += keep_from
        return _wire(out)


def resample(pcm: bytes, src: int, dst: int) -> bytes:
    """A whole clip of 16-bit PCM from `src` Hz to `dst` Hz."""
    r = Resampler(src, dst)
    return r.process(pcm) + r.flush()


def frame_bytes(rate: int, ms: int = FRAME_MS, width: int = 2) -> int:
    return rate * ms // 1000 * width


def frames(pcm: bytes, rate: int, ms: int = FRAME_MS) -> Iterator[bytes]:
    """Whole frames of 16-bit PCM; a short tail is dropped (VAD takes only whole frames)."""
    size = frame_bytes(rate, ms)
    for start in range(0, len(pcm) - size + 1, size):
        yield pcm[start : start + size]


class Framer:
    """Cuts a stream of chunks of any size (Twilio's media payloads) into whole frames."""

    def __init__(self, rate: int, ms: int = FRAME_MS, width: int = 2) -> None:
        self.size = frame_bytes(rate, ms, width)
        self._pending = b""

    def push(self, chunk: bytes) -> list[bytes]:
        data = self._pending + chunk
        cut = len(data) - len(data) % self.size
        self._pending = data[cut:]
        return [data[i : i + self.size] for i in range(0, cut, self.size)]


def read_wav(data: bytes) -> tuple[bytes, int]:
    """(mono 16-bit PCM, rate) from a WAV file's bytes; stereo is mixed down by taking the left channel."""
    with wave.open(io.BytesIO(data)) as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"expected 16-bit WAV, got {8 * w.getsampwidth()}-bit")
        pcm, channels = w.readframes(w.getnframes()), w.getnchannels()
        rate = w.getframerate()
    if channels > 1:
        pcm = _wire(_native(pcm)[::channels])
    return pcm, rate


def write_wav(pcm: bytes, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


def silence(ms: int, rate: int) -> bytes:
    return bytes(frame_bytes(rate, ms))
