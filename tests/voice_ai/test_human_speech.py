"""Real human speech through the phone path: one professional speaker's recorded digits (Debian's
asterisk-core-sounds-en-wav, Allison Smith, CC-BY-SA-3.0) at full level and 20 dB quieter, over line
noise, through mu-law, the endpointer, a questionnaire's grammar and pocketsphinx; and the weighing of
the spotting grammar against the answer's (voice_ai.asr.heard_with_spotting)."""

from __future__ import annotations

import random
import shutil
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import yaml

from questionnaires.channels import VoicePhrases, spoken_form
from questionnaires.loader import parse_questionnaire
from voice_ai.asr import Recognition, heard_with_spotting
from voice_ai.asr_pocketsphinx import PocketsphinxRecogniser
from voice_ai.audio import frames, pcm16_to_ulaw, read_wav, ulaw_to_pcm16
from voice_ai.tts import EspeakSynthesizer, Voice
from voice_ai.vad import Endpointer, SpeechEnded, SpeechStarted, VadConfig, VadEvent

DIGITS = Path("/usr/share/asterisk/sounds/en_US_f_Allison/digits")
ROOT = Path(__file__).resolve().parents[2]
Decode = Callable[[Sequence[str]], Recognition]
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
pytestmark = [
    pytest.mark.speech,
    pytest.mark.skipif(not DIGITS.is_dir(), reason="make system-deps installs asterisk-core-sounds-en-wav"),
]


def recording(word: str) -> bytes:
    pcm, rate = read_wav((DIGITS / f"{WORDS.index(word)}.wav").read_bytes())
    assert rate == 8000
    return pcm


def on_the_line(pcm: bytes, gain: float, noise_rms: float, seed: int) -> bytes:
    """Two seconds of line before the answer and after it, noise throughout, through mu-law."""
    rng = random.Random(seed)
    lead = [0.0] * 16000
    mixed = [x + rng.gauss(0, noise_rms) for x in [*lead, *(v * gain for v in array("h", pcm)), *lead]]
    line = array("h", (int(max(-32768, min(32767, v))) for v in mixed)).tobytes()
    return ulaw_to_pcm16(pcm16_to_ulaw(line))


def endpointed(pcm: bytes) -> tuple[list[VadEvent], bytes]:
    ep = Endpointer(8000, config=VadConfig(no_input_ms=4500))
    events = [e for f in frames(pcm, 8000) if (e := ep.push(f))]
    audio = events[-1].audio if events and isinstance(events[-1], SpeechEnded) else b""
    return events, audio


@pytest.fixture(scope="module")
def nps_grammar() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The grammar a call listens with on the NPS question (0-10), and the spotting phrases."""
    q = parse_questionnaire(yaml.safe_load((ROOT / "content/questionnaires/nps.yaml").read_text()))
    raw = yaml.safe_load((ROOT / "content/questionnaires/voice/en.yaml").read_text())
    phrases = VoicePhrases.parse(raw, "en")
    form = spoken_form(q.items[0], "en", phrases)
    return tuple(form.grammar), (*phrases.person_words, *phrases.alarm_words)


@pytest.mark.parametrize(("gain", "noise_rms"), [(0.1, 0), (0.1, 30), (0.1, 100), (1.0, 150)])
def test_a_quiet_real_short_answer_is_endpointed_whole_and_only_once(gain: float, noise_rms: float) -> None:
    """-20 dB (gain 0.1) is a caller far from the phone; "one", "two" and "eight" are as short as a yes."""
    for seed, word in enumerate(("one", "two", "eight", "ten")):
        pcm = recording(word)
        events, audio = endpointed(on_the_line(pcm, gain, noise_rms, seed))
        assert [type(e) for e in events] == [SpeechStarted, SpeechEnded], (word, events)
        assert isinstance(events[0], SpeechStarted) and events[0].at_ms >= 1500  # not the line before it
        assert len(audio) >= len(pcm) * 0.8, word  # the word is in the cut, not only its loudest part


@pytest.mark.parametrize("gain", [1.0, 0.1])
def test_real_short_digits_are_recognised_with_the_questions_grammar(
    gain: float, nps_grammar: tuple[tuple[str, ...], tuple[str, ...]]
) -> None:
    grammar, _ = nps_grammar
    rec = PocketsphinxRecogniser(8000)
    for seed, word in enumerate(("zero", "one", "eight", "ten")):  # right at both levels when measured
        _, audio = endpointed(on_the_line(recording(word), gain, 0, seed))
        rec.start(grammar)
        rec.accept(audio)
        assert rec.result().text == word


def _decoder(rec: PocketsphinxRecogniser, pcm: bytes) -> Decode:
    def decode(phrases: Sequence[str]) -> Recognition:
        rec.start(phrases)
        rec.accept(pcm)
        return rec.result()

    return decode


def test_no_plain_real_digit_is_taken_for_a_person_or_a_red_flag(
    nps_grammar: tuple[tuple[str, ...], tuple[str, ...]],
) -> None:
    """The spotting grammar alone forces its nearest phrase: measured, it heard "operator" in "three",
    "nurse" in "nine" and "i cannot breathe" in a quiet "seven"; weighed head to head, none of them."""
    grammar, spot = nps_grammar
    rec = PocketsphinxRecogniser(8000)
    forced = 0
    for gain in (1.0, 0.1):
        for seed, word in enumerate(WORDS):
            _, audio = endpointed(on_the_line(recording(word), gain, 0, seed))
            decode = _decoder(rec, audio)
            forced += bool(decode(spot).text)
            heard = heard_with_spotting(decode, grammar, spot)
            assert heard.text not in spot, (word, gain, heard)
    assert forced >= 2  # the case the weighing is for is really there


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="make system-deps installs espeak-ng")
def test_a_said_red_flag_or_person_still_wins(
    nps_grammar: tuple[tuple[str, ...], tuple[str, ...]], tmp_path: Path
) -> None:
    grammar, spot = nps_grammar
    synth = EspeakSynthesizer(tmp_path, {"en": Voice("en-us", 160)})
    rec = PocketsphinxRecogniser(8000)
    for seed, phrase in enumerate(("i cannot breathe", "i fainted", "nurse", "operator")):
        pcm = ulaw_to_pcm16(synth.synthesize(phrase, "en"))
        _, audio = endpointed(on_the_line(pcm, 1.0, 0, seed))
        assert heard_with_spotting(_decoder(rec, audio), grammar, spot).text == phrase


def test_the_weighing_keeps_each_grammars_own_result_when_they_agree_or_one_is_empty() -> None:
    """With a decoder that answers from a table (the engine's results as given), which result is taken."""
    table = {("ten",): Recognition("ten", 0.9)}

    def decode_with(spot_result: Recognition, duel: str) -> Decode:
        def decode(phrases: Sequence[str]) -> Recognition:
            if tuple(phrases) == ("ten", "nine"):
                return table[("ten",)]
            if tuple(phrases) == ("nurse",):
                return spot_result
            if len(phrases) == 2:
                return Recognition(duel, 0.5)
            return Recognition("ten", 0.9)

        return decode

    answer = ("ten", "nine")
    assert heard_with_spotting(decode_with(Recognition("", 0.0), ""), answer, ("nurse",)).text == "ten"
    assert heard_with_spotting(
        decode_with(Recognition("nurse", 0.4), "nurse"), answer, ("nurse",)
    ) == Recognition("nurse", 0.4)
    assert heard_with_spotting(
        decode_with(Recognition("nurse", 0.4), "ten"), answer, ("nurse",)
    ) == Recognition("ten", 0.9)
    assert heard_with_spotting(decode_with(Recognition("nurse", 0.4), "nurse"), answer, ()).text == "ten"
