"""Read-back thresholds per recogniser: confidence of right and wrong recognitions, and whole questions
answered through the call session (read-back, second try, keypad) on speakers kept apart.

Run from the repository root (about 5 minutes on these 2 shared cores):

    PYTHONPATH=. python bench/voice_calibration.py

Speakers: espeak-ng voices and variants, at two speeds, clean and over line noise, through 8 kHz mu-law
and the endpointer; and ONE REAL SPEAKER: the digits 0-10 of Debian's `asterisk-core-sounds-en-wav`
(studio recordings by one professional voice, Allison Smith, 8 kHz, CC-BY-SA-3.0; `make system-deps`
installs it). That package has no "yes" or "no", so on the recorded speaker a read-back is answered by
the keypad (1 or 2, as the prompt offers), and a second try plays the same recording again over
another line (there is one recording per word). One speaker is not a population: her figures say how
the path treats real speech, not what a hospital's patients will get.

1. Calibration speakers: every answer of the NPS question (0-10, the grammar a call listens for, red-flag
   and person phrases included) once per speed and noise; the confidence of right and of wrong
   recognitions. The threshold is the one that catches the most wrong answers while reading back at most
   20 % of all answers.
2. Test speakers (never used to choose the threshold): each answer asked through `CallSession` with that
   threshold, decoded as the call driver does (the answer's grammar and the spotting grammar); the
   simulated caller says the answer (a second rendition on a second try), answers a read-back with a
   spoken yes or no as a person would (yes when it was right), declines an offer of a person it did not
   ask for, and types the answer when the session asks for the keypad. `stored_correct` is the share of stored answers equal to what was
   said, `confirm_rate` the share that needed a read-back, `keypad_rate` the share that ended on the keypad.

3. The recorded speaker: each digit asked through `CallSession` as in 2, with the threshold from 1 and
   with the setting's default, at full level and 20 dB quieter, clean and over line noise; and the
   confidence of right and wrong recognitions of the same utterances, and how often a person or a red
   flag was spotted in a plain digit (`false_spot_rate`).

The output ends with one JSON line.
"""

from __future__ import annotations

import json
import math
import random
import sys
import tempfile
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from questionnaires.channels import VoicePhrases  # noqa: E402
from questionnaires.loader import parse_questionnaire  # noqa: E402
from voice_ai import session as s  # noqa: E402
from voice_ai.asr import Recognition, heard_with_spotting  # noqa: E402
from voice_ai.asr_pocketsphinx import PocketsphinxRecogniser  # noqa: E402
from voice_ai.audio import frames, pcm16_to_ulaw, read_wav, silence, ulaw_to_pcm16  # noqa: E402
from voice_ai.tts import EspeakSynthesizer, Voice  # noqa: E402
from voice_ai.vad import Endpointer, SpeechEnded  # noqa: E402

CALIBRATION = ("en-us", "en-gb", "en-gb-scotland", "en-us+f3", "en-029+m3")
TEST = ("en-gb-x-rp", "en-gb-x-gbclan+f2", "en-gb-x-gbcwmd", "en-us+m7", "en-gb+f4", "en-029+f1")
SPEEDS = (140, 175)
NOISE_RMS = (0, 150)  # clean, and line noise
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
MAX_CONFIRM = 0.2
DOB = date(1950, 3, 5)


@dataclass(frozen=True)
class Heard:
    said: str
    text: str
    confidence: float


class Caller:
    """One synthetic speaker: renditions of a phrase at a speed, with or without line noise."""

    by_key = False  # answers a read-back by saying yes or no

    def __init__(self, work: Path, voice: str) -> None:
        self.voice, self.work = voice, work
        self.synth: dict[int, EspeakSynthesizer] = {}

    def utterance(self, text: str, speed: int, noise: float, seed: int) -> bytes:
        if speed not in self.synth:
            voice = {"en": Voice(self.voice, speed)}
            self.synth[speed] = EspeakSynthesizer(self.work / f"{self.voice}-{speed}", voice, engine="cli")
        pcm = (
            silence(500, 8000) + ulaw_to_pcm16(self.synth[speed].synthesize(text, "en")) + silence(1000, 8000)
        )
        return _line(pcm, noise, seed)


ASTERISK_DIGITS = Path("/usr/share/asterisk/sounds/en_US_f_Allison/digits")
RECORDED_LINES = ((1.0, 0), (1.0, 150), (0.1, 0), (0.1, 30))  # (gain, noise RMS): full and -20 dB


class RecordedCaller:
    """The asterisk recordings of one real speaker: a word's WAV at a gain, over line noise, through
    mu-law and the endpointer. `speed` is not varied (one recording per word)."""

    by_key = True  # no recording of "yes" or "no": read-backs are answered on the keypad

    def __init__(self, gain: float) -> None:
        self.voice, self.gain = f"asterisk-allison@{20 * math.log10(gain):+.0f}dB", gain

    def utterance(self, text: str, speed: int, noise: float, seed: int) -> bytes:
        pcm, rate = read_wav((ASTERISK_DIGITS / f"{WORDS.index(text)}.wav").read_bytes())
        assert rate == 8000, rate
        scaled = array("h", (int(x * self.gain) for x in array("h", pcm))).tobytes()
        return _line(silence(500, 8000) + scaled + silence(1000, 8000), noise, seed)


def _line(pcm: bytes, noise: float, seed: int) -> bytes:
    """Line noise (white, RMS `noise`), mu-law both ways, then the endpointer's cut of the answer."""
    if noise:
        rng = random.Random(seed)
        samples = array("h", pcm)
        noisy = (int(max(-32768, min(32767, x + rng.gauss(0, noise)))) for x in samples)
        pcm = array("h", noisy).tobytes()
    pcm = ulaw_to_pcm16(pcm16_to_ulaw(pcm))
    ep = Endpointer(8000)
    for frame in frames(pcm, 8000):
        if isinstance(event := ep.push(frame), SpeechEnded):
            return event.audio
    return b""  # the endpointer heard nothing: the session gets silence


def _session(threshold: float) -> s.CallSession:
    q = parse_questionnaire(yaml.safe_load((ROOT / "content/questionnaires/nps.yaml").read_text()))
    phrases = VoicePhrases.parse(
        yaml.safe_load((ROOT / "content/questionnaires/voice/en.yaml").read_text()), "en"
    )
    messages = {"en": yaml.safe_load((ROOT / "content/questionnaires/messages/en.yaml").read_text())}
    script = s.Script(greeting="", ask_birth_date="Birth date?", identity_failed="", confirm="I heard {answer}.",
                      keypad_only="Keypad.", voicemail="", goodbye="Goodbye.", callback="")  # fmt: skip
    session = s.CallSession(q, "en", phrases, messages, script, birth_date=DOB, today=date(2025, 1, 1),
                            confirm_below=threshold)  # fmt: skip
    session.handle(s.Answered())
    for key in "05031950":
        session.handle(s.Key(key))
    return session


def _recognise(rec: PocketsphinxRecogniser, grammar: tuple[str, ...], pcm: bytes) -> tuple[str, float]:
    if not pcm:
        return "", 0.0
    rec.start(grammar)
    rec.accept(pcm)
    heard = rec.result()
    return heard.text, heard.confidence


def _as_the_driver(rec: PocketsphinxRecogniser, listen: s.Listen, pcm: bytes) -> tuple[str, float]:
    """The answer's grammar and the spotting grammar, weighed as the call driver does."""
    if not pcm:
        return "", 0.0

    def decode(phrases: Sequence[str]) -> Recognition:
        rec.start(phrases)
        rec.accept(pcm)
        return rec.result()

    heard = heard_with_spotting(decode, listen.grammar, listen.spot)
    return heard.text, heard.confidence


def distributions(rec: PocketsphinxRecogniser, callers: list[Caller]) -> list[Heard]:
    listen = _session(0.0).handle(s.Silence())[-1]
    assert isinstance(listen, s.Listen)
    out = []
    for caller in callers:
        for speed in SPEEDS:
            for noise in NOISE_RMS:
                for n, word in enumerate(WORDS):
                    text, conf = _recognise(rec, listen.grammar, caller.utterance(word, speed, noise, n))
                    out.append(Heard(word, text, conf))
    return out


def choose(heard: list[Heard]) -> tuple[float, dict[str, float]]:
    """The threshold catching the most wrong answers (nothing heard counts as caught: it is asked again)
    with at most MAX_CONFIRM of all answers read back; ties go to the lower threshold."""
    best: tuple[float, float] = (-1.0, 0.0)
    for step in range(0, 101):
        t = step / 100
        unsure = [h for h in heard if h.text and h.confidence < t]
        if len(unsure) > MAX_CONFIRM * len(heard):
            break
        wrong = [h for h in heard if h.text and h.text != h.said]
        caught = sum(1 for h in wrong if h.confidence < t) / len(wrong) if wrong else 1.0
        if caught > best[0]:
            best = (caught, t)
    right = [h.confidence for h in heard if h.text == h.said]
    wrong_c = [h.confidence for h in heard if h.text and h.text != h.said]
    figures = {
        "utterances": len(heard),
        "right": len(right),
        "wrong": len(wrong_c),
        "nothing": sum(1 for h in heard if not h.text),
        "right_conf_p10": round(sorted(right)[len(right) // 10], 3) if right else 0.0,
        "right_conf_median": round(sorted(right)[len(right) // 2], 3) if right else 0.0,
        "wrong_conf_median": round(sorted(wrong_c)[len(wrong_c) // 2], 3) if wrong_c else 0.0,
        "wrong_conf_max": round(max(wrong_c), 3) if wrong_c else 0.0,
        "wrong_caught": round(best[0], 3),
    }
    return best[1], figures


def ask(rec: PocketsphinxRecogniser, caller: Caller | RecordedCaller, word: str, value: int, threshold: float,
        speed: int, noise: float) -> tuple[int | None, bool, bool, bool]:  # fmt: skip
    """One question through the session: (stored value, read back?, ended on the keypad?, a person or a
    red flag spotted that was not said?)."""
    session = _session(threshold)
    acts = session.handle(s.Silence())  # the question again: its listener is the last action
    tries = confirmed = keypad = spotted = 0
    for _ in range(12):
        saved = [a for a in acts if isinstance(a, s.SaveAnswer)]
        if saved:
            return int(str(saved[0].value)), confirmed > 0, keypad > 0, spotted > 0
        last = acts[-1]
        asking = session._asking
        if not isinstance(last, s.Listen) or asking is None:
            return None, confirmed > 0, keypad > 0, spotted > 0
        if session.phase is s.Phase.OFFER_STAFF:  # spotted though not said: "no, go on" (key 2)
            spotted += 1
            acts = session.handle(s.Key("2"))
        elif not last.grammar:  # keypad only: the caller types the answer
            keypad += 1
            acts = [a for k in f"{value}#" for a in session.handle(s.Key(k))]
        elif asking.pending is not None:  # "I heard ... is that right?": yes when it was
            confirmed += 1
            reply = "yes" if asking.pending[1] == word else "no"
            if caller.by_key:
                acts = session.handle(s.Key("1" if reply == "yes" else "2"))
                continue
            text, conf = _recognise(rec, last.grammar, caller.utterance(reply, speed, noise, 100 + tries))
            acts = session.handle(s.Heard(text, conf))
        else:
            tries += 1
            pcm = caller.utterance(word, speed + 10 * tries, noise, tries)
            text, conf = _as_the_driver(rec, last, pcm)
            acts = session.handle(s.Heard(text, conf))
    return None, confirmed > 0, keypad > 0, spotted > 0


def default_threshold() -> float:
    from backend.app.settings import Settings

    return float(Settings.model_fields["voice_confirm_below_pocketsphinx"].default)


def recorded_speaker(rec: PocketsphinxRecogniser, chosen: float, default: float) -> dict[str, Any]:
    """Section 3: the real speaker's digits, at full level and -20 dB, clean and over line noise."""
    if not ASTERISK_DIGITS.is_dir():
        return {
            "skipped": f"{ASTERISK_DIGITS} missing: make system-deps installs asterisk-core-sounds-en-wav"
        }
    listen = _session(0.0).handle(s.Silence())[-1]
    assert isinstance(listen, s.Listen)
    heard, spotted_alone, nothing_cut = [], 0, 0
    for gain, noise in RECORDED_LINES:
        caller = RecordedCaller(gain)
        for n, word in enumerate(WORDS):
            pcm = caller.utterance(word, 0, noise, n)
            nothing_cut += not pcm
            text, conf = _recognise(rec, listen.grammar, pcm)
            heard.append(Heard(word, text, conf))
            spotted_alone += bool(pcm) and bool(_recognise(rec, listen.spot, pcm)[0])
    _, figures = choose(heard)
    out: dict[str, Any] = {
        "utterances": len(heard),
        "endpointer_missed": nothing_cut,
        "answer_grammar": figures,
        "spotting_grammar_alone_false_spots": spotted_alone,
    }
    for name, threshold in (("chosen", chosen), ("default", default)):
        trials = stored = correct = confirms = keypads = spots = 0
        for gain, noise in RECORDED_LINES:
            caller = RecordedCaller(gain)
            for value, word in enumerate(WORDS):
                got, confirmed, keypad, spot = ask(rec, caller, word, value, threshold, 0, noise)
                trials += 1
                stored += got is not None
                correct += got == value
                confirms += confirmed
                keypads += keypad
                spots += spot
        out[f"threshold_{name}"] = {
            "threshold": threshold,
            "questions": trials,
            "stored_correct": round(correct / stored, 4) if stored else 0.0,
            "confirm_rate": round(confirms / trials, 4),
            "keypad_rate": round(keypads / trials, 4),
            "false_spot_rate": round(spots / trials, 4),
        }
    return out


def main() -> int:
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="careloop-calibration-"))
    rec = PocketsphinxRecogniser(8000)
    calibration = distributions(rec, [Caller(work, v) for v in CALIBRATION])
    threshold, figures = choose(calibration)
    print(f"pocketsphinx, calibration voices {', '.join(CALIBRATION)}: {figures}; threshold {threshold}",
          flush=True)  # fmt: skip
    trials = stored = correct = confirms = keypads = spots = 0
    for voice in TEST:
        caller = Caller(work, voice)
        for speed in SPEEDS:
            for noise in NOISE_RMS:
                for value, word in enumerate(WORDS):
                    got, confirmed, keypad, spot = ask(rec, caller, word, value, threshold, speed, noise)
                    trials += 1
                    spots += spot
                    stored += got is not None
                    correct += got == value
                    confirms += confirmed
                    keypads += keypad
    recorded = recorded_speaker(rec, threshold, default_threshold())
    print(f"recorded speaker (asterisk-core-sounds-en-wav, one person): {recorded}", flush=True)
    result: dict[str, Any] = {
        "speech": "synthetic (espeak-ng voices) and one real speaker (asterisk digits)",
        "engine": "pocketsphinx",
        "threshold": threshold,
        "calibration": figures,
        "test_questions": trials,
        "stored_correct": round(correct / stored, 4) if stored else 0.0,
        "confirm_rate": round(confirms / trials, 4),
        "keypad_rate": round(keypads / trials, 4),
        "false_spot_rate": round(spots / trials, 4),  # a person or a red flag heard in a plain answer
        "recorded_speaker": recorded,
        "seconds": round(time.monotonic() - began),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
