"""Codecs, resampling, framing, VAD end-pointing and DTMF on synthetic signals."""

from __future__ import annotations

import math
from array import array

import pytest

from questionnaires.channels import Keypad, SpokenForm
from voice_ai.audio import Framer, Resampler, frames, pcm16_to_ulaw, resample, silence, ulaw_to_pcm16
from voice_ai.dtmf import BadKeys, KeyCollector, Keyed, ToneDetector, tone
from voice_ai.vad import Endpointer, NoInput, SpeechEnded, SpeechStarted, VadConfig


def sine(freq: float, ms: int, rate: int, amp: int = 10000) -> bytes:
    n = rate * ms // 1000
    return array("h", (int(amp * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))).tobytes()


def test_ulaw_round_trip_is_within_a_quantisation_step() -> None:
    pcm = array("h", range(-32768, 32768, 7)).tobytes()
    back = array("h", ulaw_to_pcm16(pcm16_to_ulaw(pcm)))
    for x, y in zip(array("h", pcm), back, strict=True):
        assert abs(x - y) <= max(16, abs(x) // 16)
    assert pcm16_to_ulaw(b"\x00\x00") == b"\xff"  # G.711: zero is 0xFF
    assert ulaw_to_pcm16(b"\xff\x7f") == array("h", [0, 0]).tobytes()


def test_resampling_keeps_a_tone_and_its_length() -> None:
    tone8 = sine(440, 1000, 8000)
    up = resample(tone8, 8000, 16000)
    assert len(up) == 2 * len(tone8)
    assert 9000 < max(array("h", up)[400:-400]) < 10500
    down = resample(sine(3000, 1000, 16000), 16000, 8000)
    assert 9000 < max(array("h", down)[400:-400]) < 10500
    aliased = array("h", resample(sine(6000, 500, 16000), 16000, 8000))[200:-200]
    assert max(map(abs, aliased)) < 800  # filtered, not folded back to 2 kHz


def test_streaming_resampler_equals_one_shot() -> None:
    clip = sine(500, 300, 8000)
    r = Resampler(8000, 16000)
    streamed = b"".join(r.process(f) for f in frames(clip, 8000)) + r.flush()
    assert streamed == resample(clip, 8000, 16000)


def test_framer_cuts_any_chunks_into_20ms_frames() -> None:
    f = Framer(8000, width=1)
    out = f.push(b"x" * 100) + f.push(b"y" * 300)
    assert [len(x) for x in out] == [160, 160]


class Loud:
    """Stands for webrtcvad: a frame is speech when it is loud (the outside engine, not our logic)."""

    def is_speech(self, frame: bytes, rate: int) -> bool:
        return max(map(abs, array("h", frame))) > 1000


def test_endpointer_start_end_and_no_input() -> None:
    ep = Endpointer(8000, Loud(), VadConfig(end_silence_ms=200, no_input_ms=400))
    audio = silence(100, 8000) + sine(300, 400, 8000) + silence(300, 8000)
    events = [e for f in frames(audio, 8000) if (e := ep.push(f))]
    assert isinstance(events[0], SpeechStarted) and isinstance(events[1], SpeechEnded)
    assert len(events[1].audio) >= len(sine(300, 400, 8000))
    ep.reset()
    events = [e for f in frames(silence(600, 8000), 8000) if (e := ep.push(f))]
    assert events == [NoInput(400)]


def test_real_webrtcvad_finds_a_tone_burst_among_silence() -> None:
    ep = Endpointer(16000, config=VadConfig(end_silence_ms=300))
    audio = silence(200, 16000) + sine(200, 600, 16000) + silence(500, 16000)
    kinds = [type(e) for f in frames(audio, 16000) if (e := ep.push(f))]
    assert kinds == [SpeechStarted, SpeechEnded]


def test_tone_detector_hears_every_key_once() -> None:
    pcm = b"".join(tone(k) + silence(60, 8000) for k in "0123456789*#") + sine(300, 200, 8000)
    d = ToneDetector()
    assert "".join(k for f in frames(pcm, 8000) if (k := d.push(f))) == "0123456789*#"


def test_keys_map_to_option_codes_and_typed_numbers_and_dates() -> None:
    choice = SpokenForm(prompt="", dtmf={"1": "good", "2": "bad"})
    assert KeyCollector(choice).press("2") == Keyed("bad")
    assert KeyCollector(choice).press("7") == BadKeys("7")
    number = KeyCollector(SpokenForm(prompt="", keypad=Keypad(max_digits=3, decimal_key="*")))
    assert [number.press(k) for k in "3*5#"] == [None, None, None, Keyed("3.5")]
    date = KeyCollector(SpokenForm(prompt="", keypad=Keypad(max_digits=8, date_order="DMY")))
    assert [date.press(k) for k in "05031950#"][-2:] == [Keyed("1950-03-05"), None]


@pytest.mark.parametrize("rate", [8000, 16000])
def test_endpointer_refuses_a_wrong_frame(rate: int) -> None:
    with pytest.raises(ValueError, match="bytes"):
        Endpointer(rate, Loud()).push(b"\x00" * 10)
