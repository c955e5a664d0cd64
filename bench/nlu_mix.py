"""Survey-heavy web chat traffic with the real Rasa: turns per second beside Rasa alone on the same texts.

Run from the repository root with Rasa serving on 127.0.0.1:5005 (``make nlu-serve``), no arguments:

    PYTHONPATH=. python bench/nlu_mix.py

Setup (not measured), as bench/turns.py does it: a fresh PostgreSQL database, ``careloop migrate``,
``publish``, ``demo --patients N`` (its doctors have clinics, so booking offers departments), then
``careloop serve --workers 2`` with ``CARELOOP_NLU_URL`` pointing at Rasa and jobs inline. Every patient
opens the chat, agrees to care messages and asks for the menu.

The mix
-------
Each of 16 clients walks its patients, one request at a time, through a cycle of about 20 turns at
the main menu, in the patient's language (zh-CN, vi or en, as the demo gave them):

- free text (20 %): two FAQ questions and two other requests (book, my appointments, move, cancel,
  consent, complaint, praise, suggestion) drawn from the held-out sets ``nlu/rasa/tests/*.yml``
  (never trained on; texts a safety rule catches are left out, since they never reach Rasa);
- yes/no (10 %): "no" to "anything else?" after an FAQ answer;
- options or numbers (70 %): "menu" after the other requests, "6" for the surveys, the outpatient
  satisfaction survey by its button, its items answered by number or by button, the last one skipped.

The mix is what the bot's replies lead to, so the measured shares are printed. Then the same texts,
in the same order, go one by one to Rasa's ``/model/parse`` (no cache) for up to 20 s: the Rasa-only
rate. ``speedup_vs_rasa`` = chat turns/s / Rasa texts/s (target >= 5). Each free-text turn's reply
shows where the bot went (an FAQ answer, booking's first question, ...); ``intents_match`` is the share
of free-text turns that went where Rasa's own reading of the text leads (below the bot's 0.6
confidence, or a fallback: a clarification). Last, nlu/evaluate.py's held-out accuracy per language.
Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [str(_BENCH_DIR.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _BENCH_DIR]

import httpx  # noqa: E402

from bench import harness  # noqa: E402
from nlu.client import FALLBACK_INTENT, NluClient, normalise  # noqa: E402
from nlu.evaluate import LANGUAGES, TESTS_DIR, evaluate, load_examples  # noqa: E402
from nlu.safety import check  # noqa: E402

RASA_URL = "http://127.0.0.1:5005"
MIN_CONFIDENCE = 0.6  # settings.nlu_min_confidence's default, which the server runs with
SURVEY = "outpatient_satisfaction"
SKIP = "__skip"
FAQ = ("faq_visiting_hours", "faq_parking", "faq_billing", "faq_report_pickup", "faq_directions")
# where the main menu sends each intent (content/dialogues/main_menu.yaml); anything else is re-asked
DESTINATION = {
    **{intent: intent for intent in FAQ},
    "book": "book",
    **dict.fromkeys(("my_appointments", "reschedule", "cancel"), "appointments"),
    **dict.fromkeys(("consent_grant", "consent_revoke"), "consent"),
    **dict.fromkeys(("complain", "praise", "suggest"), "feedback"),
    "ask_human": "handoff",
    "goodbye": "bye",
}
# the first reply of each destination (catalogue keys), to read off where a free text went
MARKERS = {
    **{intent: (f"faq.{intent[4:]}",) for intent in FAQ},
    "book": ("booking.ask_department", "booking.nothing_free", "booking.need_record"),
    "appointments": ("booking.my_list", "booking.none_booked"),
    "consent": ("consent.current", "consent.not_registered"),
    "feedback": ("fb.ask_department", "fb.ask_text"),
    "handoff": ("common.passed_to_staff", "common.emergency"),
    "bye": ("menu.goodbye",),
    "clarify": ("menu.reprompt",),
}
LANG_FILES = {"zh-CN": "zh", "vi": "vi", "en": "en"}


class Catalog:
    """The patient texts the bench recognises in replies."""

    def __init__(self) -> None:
        from backend.dialogue.content import load_catalog

        self._catalog = load_catalog(harness.REPO_ROOT / "content", "CareLoop Demo Hospital")

    def text(self, lang: str, key: str) -> str:
        raw = self._catalog.text(lang, key, bk_list="")
        return raw.strip()

    def destination(self, lang: str, reply: str) -> str:
        for where, keys in MARKERS.items():
            if any(self.text(lang, k).split("\n")[0] in reply for k in keys):
                return where
        return "other"


def pools(rng: random.Random) -> dict[str, tuple[list[str], list[str]]]:
    """Per language: (FAQ questions, other requests) from the held-out set, none caught by a safety rule."""
    found = {}
    for lang, stem in LANG_FILES.items():
        examples = [e for e in load_examples(TESTS_DIR / f"{stem}.yml") if check(e.text) is None]
        faq = [e.text for e in examples if e.intent in FAQ]
        other = [e.text for e in examples if e.intent in DESTINATION and e.intent not in FAQ]
        other = [t for t in other if DESTINATION.get(_label(examples, t), "") not in ("handoff", "bye")]
        rng.shuffle(faq)
        rng.shuffle(other)
        found[lang] = (faq, other)
    return found


def _label(examples: list[Any], text: str) -> str:
    return next(e.intent for e in examples if e.text == text)


@dataclass
class Patient:
    token: str
    lang: str
    after: int = 0


@dataclass
class Stats:
    latencies_ns: list[int] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    texts: list[str] = field(default_factory=list)  # every measured turn's text, in order
    free: list[tuple[str, str, str]] = field(default_factory=list)  # (lang, text, destination)
    aborted: int = 0


class Walker:
    """One client: a keep-alive connection, its patients and the shared pools and catalogue."""

    def __init__(self, port: int, catalog: Catalog, cycles: dict[str, tuple[Iterator[str], Iterator[str]]],
                 rng: random.Random) -> None:
        self.conn, self.catalog, self.rng, self.cycles = harness.Connection(port), catalog, rng, cycles
        self.ids = itertools.count()

    async def turn(self, patient: Patient, stats: Stats | None, kind: str, text: str,
                   choice: str | None = None) -> tuple[str, list[dict[str, Any]]]:
        fields = {"client_id": f"mix-{id(self)}-{next(self.ids)}", "after": str(patient.after), "text": text}
        if choice is not None:
            fields["choice"] = choice
        body = urllib.parse.urlencode(fields).encode()
        started = time.perf_counter_ns()
        try:
            status, payload = await self.conn.request("POST", f"/c/{patient.token}/messages", body)
        except harness.HttpError:  # the server closed an idle keep-alive connection: again, on a new one
            started = time.perf_counter_ns()  # (the same client_id: stored and answered once at most)
            status, payload = await self.conn.request("POST", f"/c/{patient.token}/messages", body)
        elapsed = time.perf_counter_ns() - started
        if status != 200:
            raise harness.HttpError(f"POST {kind}: HTTP {status}: {payload[:200]!r}")
        items = json.loads(payload)["items"]
        if items:
            patient.after = max(patient.after, max(int(i["id"]) for i in items))
        bot = [i for i in items if not i["mine"]]
        if stats is not None:
            stats.latencies_ns.append(elapsed)
            stats.kinds[kind] += 1
            stats.texts.append(text)
        return "\n".join(i["text"] for i in bot), bot

    async def setup(self, patient: Patient) -> None:
        status, _ = await self.conn.request("GET", f"/c/{patient.token}")
        if status != 200:
            raise harness.HttpError(f"GET page: HTTP {status}")
        await self.turn(patient, None, "setup", self.catalog.text(patient.lang, "common.yes"), "yes")
        await self.turn(patient, None, "setup", "menu")

    async def cycle(self, patient: Patient, stats: Stats) -> None:
        lang = patient.lang
        faq, other = self.cycles[lang]
        for source in (faq, other, faq, other):
            text = next(source)
            reply, bot = await self.turn(patient, stats, "free_text", text)
            where = self.catalog.destination(lang, reply)
            stats.free.append((lang, text, where))
            if not bot or where in ("handoff", "bye"):
                stats.aborted += 1
                return
            if self.catalog.text(lang, "faq.more") in reply:
                await self.turn(patient, stats, "yes_no", self.catalog.text(lang, "common.no"))
            else:
                await self.turn(patient, stats, "option", "menu")
        await self.turn(patient, stats, "option", "6")  # "Answer a survey", by its number
        reply, bot = await self.turn(patient, stats, "option", "survey", SURVEY)
        for n in range(30):
            if self.catalog.text(lang, "sv.thanks") in reply or not bot:
                break
            choices = [c for item in bot for c in item["choices"]]
            real = [c for c in choices if c["payload"] != SKIP]
            if not real:
                reply, bot = await self.turn(patient, stats, "option", "skip", SKIP)
            elif n % 2:
                reply, bot = await self.turn(patient, stats, "option", str(self.rng.choice((1, 2))))
            else:
                pick = real[self.rng.choice((0, 1))]
                reply, bot = await self.turn(patient, stats, "option", pick["label"], pick["payload"])
        else:
            stats.aborted += 1


async def run(port: int, pgid: int, patients: list[Patient], catalog: Catalog, texts: dict[str, Any],
              clients: int, duration: float, seed: int) -> tuple[Stats, float, dict[str, float]]:
    # one walk through each language's texts shared by all clients, so the texts vary across clients
    cycles = {lang: (itertools.cycle(faq), itertools.cycle(other)) for lang, (faq, other) in texts.items()}
    walkers = [Walker(port, catalog, cycles, random.Random(seed + i)) for i in range(clients)]
    slices = [patients[i::clients] for i in range(clients)]

    async def prepare(walker: Walker, mine: list[Patient]) -> None:
        for patient in mine:
            await walker.setup(patient)

    await asyncio.gather(*(prepare(w, s) for w, s in zip(walkers, slices, strict=True)))
    for walker in walkers:  # idle since their setup ended: start the measured phase on fresh connections
        await walker.conn.close()
    stats = Stats()
    cpu0 = harness.CpuSample.take(pgid)
    started = time.perf_counter()
    deadline = started + duration

    async def walk(walker: Walker, mine: list[Patient]) -> None:
        for patient in mine:
            if time.perf_counter() > deadline:
                break
            await walker.cycle(patient, stats)

    await asyncio.gather(*(walk(w, s) for w, s in zip(walkers, slices, strict=True)))
    seconds = time.perf_counter() - started
    cpu = harness.CpuSample.take(pgid).percent_since(cpu0, seconds)
    for walker in walkers:
        await walker.conn.close()
    return stats, seconds, cpu


def rasa_alone(texts: list[str], seconds: float) -> tuple[int, float]:
    """Texts parsed one by one by /model/parse (no cache) within `seconds`: (count, elapsed)."""
    with httpx.Client(base_url=RASA_URL, timeout=30.0) as http:
        started = time.perf_counter()
        done = 0
        for text in texts:
            http.post("/model/parse", json={"text": normalise(text)}).raise_for_status()
            done += 1
            if time.perf_counter() - started > seconds:
                break
        return done, time.perf_counter() - started


def rasa_destination(readings: dict[str, tuple[str, float]], text: str) -> str:
    intent, confidence = readings[text]
    if intent == FALLBACK_INTENT or confidence < MIN_CONFIDENCE:
        return "clarify"
    return DESTINATION.get(intent, "clarify")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds of chat traffic")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--patients", type=int, default=480)
    parser.add_argument("--rasa-seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        with NluClient(RASA_URL, connect_timeout=2.0) as probe:
            model = probe.model_fingerprint()
    except Exception as exc:  # any failure here means: no usable Rasa
        print(f"Rasa does not answer on {RASA_URL} ({exc}); start it with `make nlu-serve`", file=sys.stderr)
        return 2
    print(f"Rasa on {RASA_URL}: {model}", flush=True)
    rng = random.Random(args.seed)
    texts = pools(rng)
    catalog = Catalog()

    with harness.postgres_database() as (url, name):
        env = harness.base_env()
        env.update(DATABASE_URL=url, CARELOOP_NLU_URL=RASA_URL)
        harness.cli(env, "migrate")
        harness.cli(env, "publish")
        harness.cli(env, "demo", "--patients", str(args.patients))
        with harness.pg_connect(name) as conn:
            rows = conn.execute(f"SELECT id, language FROM patients ORDER BY id LIMIT {int(args.patients)}").fetchall()  # noqa: S608
        tokens = harness.make_tokens(env, [r[0] for r in rows])
        patients = [Patient(t, r[1] if r[1] in LANG_FILES else "zh-CN") for t, r in zip(tokens, rows, strict=True)]
        print(f"  patients by language: {dict(Counter(p.lang for p in patients))}", flush=True)
        with harness.server(env, args.workers) as (port, pgid):
            stats, seconds, cpu = asyncio.run(
                run(port, pgid, patients, catalog, texts, args.concurrency, args.duration, args.seed))

    turns = len(stats.latencies_ns)
    rate = turns / seconds
    lat = sorted(stats.latencies_ns)
    mix = {k: round(v / turns, 3) for k, v in sorted(stats.kinds.items())}
    print(f"  chat: {turns} turns in {seconds:.1f} s: {rate:.1f} turns/s, p50 {harness.percentile(lat, 50):.1f} ms, "
          f"p99 {harness.percentile(lat, 99):.1f} ms; mix {mix}; cycles cut short {stats.aborted}", flush=True)
    print(f"  CPU during the chat phase, % of one core: {cpu} (Rasa counts as other); server CPU per turn "
          f"{10 * cpu['server'] / rate:.1f} ms", flush=True)

    parsed, rasa_s = rasa_alone(stats.texts, args.rasa_seconds)
    rasa_rate = parsed / rasa_s
    print(f"  Rasa alone, one by one: {parsed} texts in {rasa_s:.1f} s: {rasa_rate:.1f} texts/s", flush=True)

    distinct = sorted({text for _, text, _ in stats.free})
    with httpx.Client(base_url=RASA_URL, timeout=30.0) as http:
        readings = {}
        for text in distinct:
            body = http.post("/model/parse", json={"text": normalise(text)}).json()
            readings[text] = (str(body["intent"]["name"]), float(body["intent"]["confidence"]))
    matched = [where == rasa_destination(readings, text) for _, text, where in stats.free]
    misses = Counter((rasa_destination(readings, t), w) for _, t, w in stats.free if w != rasa_destination(readings, t))
    print(f"  free text: {len(matched)} turns, {len(distinct)} distinct texts; went where Rasa's reading leads: "
          f"{sum(matched)}/{len(matched)}; misses (Rasa -> chat): {dict(misses)}", flush=True)

    with NluClient(RASA_URL, read_timeout=30.0, connect_timeout=5.0) as client:
        accuracy = {f"accuracy_{lang}": round(evaluate(client, lang).accuracy, 4) for lang in LANGUAGES}
    for lang, text, where in [f for f in stats.free if f[2] != rasa_destination(readings, f[1])][:5]:
        print(f"    e.g. {lang} {text!r}: Rasa {readings[text]}, the chat went to {where}", flush=True)
    print(f"  held-out intent accuracy: {accuracy}", flush=True)

    figures: dict[str, Any] = {
        "turns_per_s": round(rate, 1),
        "p50_ms": round(harness.percentile(lat, 50), 1),
        "p99_ms": round(harness.percentile(lat, 99), 1),
        "turns": turns,
        "mix": mix,
        "rasa_parse_per_s": round(rasa_rate, 1),
        "speedup_vs_rasa": round(rate / rasa_rate, 2),
        "free_text_turns": len(matched),
        "free_text_distinct": len(distinct),
        "intents_match": round(sum(matched) / len(matched), 4) if matched else None,
        "cycles_cut_short": stats.aborted,
        "server_cpu_pct": cpu["server"],
        "other_cpu_pct": cpu["other"],
        **accuracy,
        "concurrency": args.concurrency,
        "workers": args.workers,
    }
    met = figures["speedup_vs_rasa"] >= 5 and figures["intents_match"] == 1.0
    print(f"target, >= 5x Rasa alone with the same intents on the free text: {'met' if met else 'NOT met'}")
    harness.report(figures)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sys.exit(main())
