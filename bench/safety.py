"""Safety understanding on the project's own held-out messages: recall, false alarms and time per message.

Run from the repository root, no arguments, no Rasa, no database:

    PYTHONPATH=. python bench/safety.py

1. Refuses to report (exit 2) unless nlu/safety_data/heldout/*.tsv still have the SHA-256 sums recorded
   in nlu/safety_data/heldout.sha256 when the split was committed, before the rules were changed.
2. Rules alone (every model down), then rules + the embedded classifier (trained on the training split
   only; the bench checks that no held-out text is among its training texts): recall per language
   and per red-flag category, false-alarm rate per language and per kind of benign message.
3. False alarms on ordinary messages: Rasa's held-out NLU examples (nlu/rasa/tests), which neither
   the rules nor the classifier were tuned or trained on.
4. Time per message through `nlu.safety.assess` (rules + classifier, no Rasa): every held-out message,
   plus 4 KB messages per language made of held-out benign messages run together (some ending in an
   emergency, whose recall is printed too). p99 is wall-clock; `p99_cpu_ms` is the thread's CPU time,
   which is what the code costs when the machine is shared (the load average is printed).

Ends with one JSON line: recall_zh, recall_vi, recall_en (with the classifier), rules_recall_zh/vi/en,
rules_recall_min, false_alarm_zh/vi/en (with the classifier), rules_false_alarm_*, p99_ms, ...

    PYTHONPATH=. python bench/safety.py --tune   # choose the classifier threshold on the training split
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlu import safety_corpus as corpus
from nlu.safety import SafetyKind, assess, scan
from nlu.safety_net import SafetyNet, default_net

LANGS = corpus.LANGUAGES
LONG_BYTES = 4096


def rules_flag(text: str) -> bool:
    return any(h.kind is SafetyKind.EMERGENCY for h in scan(text))


def combined_flag(net: SafetyNet) -> Callable[[str], bool]:
    def flag(text: str) -> bool:
        return rules_flag(text) or net.predict(text)[0] is not None

    return flag


def report(title: str, rows: list[corpus.Labelled], flag: Callable[[str], bool]) -> dict[str, float]:
    print(f"\n== {title}")
    figures: dict[str, float] = {}
    for lang in LANGS:
        s = corpus.score([r for r in rows if r.lang == lang], flag)
        figures[f"recall_{lang}"] = round(s.recall, 4)
        figures[f"false_alarm_{lang}"] = round(s.false_alarm, 4)
        print(
            f"{lang}: recall {s.recall:.3f} ({s.emergencies - len(s.missed)}/{s.emergencies})"
            f"  false alarms {s.false_alarm:.3f} ({len(s.false_alarms)}/{s.benign})"
        )
    by_cat: dict[str, list[corpus.Labelled]] = defaultdict(list)
    for r in rows:
        by_cat[(r.label, r.category)].append(r)  # type: ignore[index]
    print("  recall by category (zh / vi / en):")
    for (label, cat), items in sorted(by_cat.items()):
        if label != corpus.EMERGENCY:
            continue
        cells = []
        for lang in LANGS:
            sub = [r for r in items if r.lang == lang]
            hit = sum(flag(r.text) for r in sub)
            cells.append(f"{hit}/{len(sub)}")
        print(f"    {cat:<16} " + "  ".join(f"{c:>6}" for c in cells))
    print("  false alarms by kind of benign message (zh / vi / en):")
    for (label, cat), items in sorted(by_cat.items()):
        if label != corpus.BENIGN:
            continue
        cells = []
        for lang in LANGS:
            sub = [r for r in items if r.lang == lang]
            cells.append(f"{sum(flag(r.text) for r in sub)}/{len(sub)}")
        print(f"    {cat:<16} " + "  ".join(f"{c:>6}" for c in cells))
    return figures


def long_messages(rows: list[corpus.Labelled]) -> list[tuple[str, bool]]:
    """4 KB messages per language of held-out benign messages run together; half end in an emergency."""
    rng = random.Random(7)
    out: list[tuple[str, bool]] = []
    for lang in LANGS:
        benign = [r.text for r in rows if r.lang == lang and r.label == corpus.BENIGN]
        emergencies = [r.text for r in rows if r.lang == lang and r.label == corpus.EMERGENCY]
        sep = "。" if lang == "zh" else ". "
        for i in range(20):
            tail = rng.choice(emergencies) if i % 2 else ""
            parts: list[str] = []
            while len(sep.join([*parts, tail]).encode()) < LONG_BYTES:
                parts.append(rng.choice(benign))
            text = sep.join([*parts, tail]) if tail else sep.join(parts)
            while len(text.encode()) > LONG_BYTES:
                parts.pop(0)
                text = sep.join([*parts, tail]) if tail else sep.join(parts)
            out.append((text, bool(tail)))
    return out


def ordinary_heldout() -> list[str]:
    """Rasa's held-out NLU examples: booking, directions, consent, complaints, mild symptoms."""
    from nlu.classifier import load_rasa_examples

    tests = sorted((Path(__file__).resolve().parents[1] / "nlu" / "rasa" / "tests").glob("*.yml"))
    return [text for text, _ in load_rasa_examples(tests)]


def timings(texts: list[str]) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for text in texts:
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        assess(text)
        cpu.append((time.thread_time_ns() - c0) / 1e6)
        wall.append((time.perf_counter_ns() - w0) / 1e6)
    return wall, cpu


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] if len(values) > 1 else values[0]


def tune() -> None:
    """Five-fold cross-validation of the net on the training split; prints the threshold curve.
    (The rules were tuned on these same messages, so their concepts are cleaner here than on new
    text: the curve flatters the net, which is why the threshold is chosen high.)"""
    from nlu.safety_net import fit, ordinary_messages

    ordinary = ordinary_messages()
    rows = corpus.load_all("train")
    rng = random.Random(11)
    rng.shuffle(rows)
    folds = [rows[i::5] for i in range(5)]
    scored: list[tuple[float, corpus.Labelled]] = []
    for i, fold in enumerate(folds):
        rest = [r for j, f in enumerate(folds) if j != i for r in f]
        pairs = [(r.text, r.category if r.label == corpus.EMERGENCY else corpus.BENIGN) for r in rest]
        net = fit(pairs + ordinary, name=f"safety-cv{i}", use_cache=False)
        scored += [(net.emergency_probability(r.text), r) for r in fold]
    emergencies = [p for p, r in scored if r.label == corpus.EMERGENCY]
    benign = [p for p, r in scored if r.label == corpus.BENIGN]
    print("threshold  net alone: recall / false alarms")
    for t in [x / 100 for x in range(50, 100, 5)]:
        recall = sum(p >= t for p in emergencies) / len(emergencies)
        alarms = sum(p >= t for p in benign) / len(benign)
        print(f"  {t:.2f}      {recall:.3f} / {alarms:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", action="store_true", help="cross-validate the threshold on the training split")
    args = parser.parse_args()
    if args.tune:
        tune()
        return 0
    bad = corpus.heldout_mismatches()
    if bad:
        print(f"held-out split changed since it was committed ({', '.join(bad)}): refusing to report")
        return 2
    heldout = corpus.load_all("heldout")
    training_texts = {text for text, _ in corpus.training_pairs()}
    leaked = [r.text for r in heldout if r.text in training_texts]
    if leaked:
        print(f"{len(leaked)} held-out texts are in the classifier's training data: refusing to report")
        return 2
    print(f"held-out split verified: {len(heldout)} messages; classifier trained on {len(training_texts)}")

    t0 = time.perf_counter()
    net = default_net()
    print(f"classifier ready in {time.perf_counter() - t0:.1f} s (cached on disk after the first run)")
    rules = report("rules alone (every model down)", heldout, rules_flag)
    figures: dict[str, object] = {f"rules_{k}": v for k, v in rules.items()}
    figures["rules_recall_min"] = min(rules[f"recall_{lang}"] for lang in LANGS)
    if net is None:
        print("classifier unavailable: the figures below are the rules' alone")
        combined = rules
    else:
        combined = report(f"rules + classifier (threshold {net.threshold})", heldout, combined_flag(net))
    figures.update(combined)
    figures["recall_min"] = min(combined[f"recall_{lang}"] for lang in LANGS)

    ordinary = ordinary_heldout()
    flagged = [text for text in ordinary if assess(text).emergency is not None]
    figures["ordinary_false_alarm"] = round(len(flagged) / len(ordinary), 4)
    print(f"\n== ordinary messages (Rasa's held-out NLU tests, {len(ordinary)}): flagged {len(flagged)}")
    for text in flagged:
        print(f"  {text}")

    longs = long_messages(heldout)
    flag = combined_flag(net) if net is not None else rules_flag
    long_hits = [flag(text) for text, emergency in longs if emergency]
    long_alarms = [flag(text) for text, emergency in longs if not emergency]
    texts = [r.text for r in heldout]
    timings(texts[:50])  # warm up: compile the rules, load the model
    wall, cpu = timings(texts)
    long_wall, long_cpu = timings([t for t, _ in longs])
    all_wall, all_cpu = wall + long_wall, cpu + long_cpu
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n== time per message through assess() (rules + classifier), load average {load:.1f}")
    print(f"  held-out messages: p50 {statistics.median(wall):.2f} ms  p99 {p99(wall):.2f} ms"
          f"  (cpu p99 {p99(cpu):.2f} ms)")
    print(f"  4 KB messages:     p50 {statistics.median(long_wall):.2f} ms  p99 {p99(long_wall):.2f} ms"
          f"  (cpu p99 {p99(long_cpu):.2f} ms)")
    print(f"  4 KB messages ending in an emergency flagged: {sum(long_hits)}/{len(long_hits)};"
          f" 4 KB benign flagged: {sum(long_alarms)}/{len(long_alarms)}")
    figures.update(
        p99_ms=round(p99(all_wall), 2),
        p99_cpu_ms=round(p99(all_cpu), 2),
        p99_short_ms=round(p99(wall), 2),
        p99_short_cpu_ms=round(p99(cpu), 2),
        p99_4kb_ms=round(p99(long_wall), 2),
        p99_4kb_cpu_ms=round(p99(long_cpu), 2),
        long_recall=round(sum(long_hits) / len(long_hits), 4),
        long_false_alarm=round(sum(long_alarms) / len(long_alarms), 4),
        load_average=round(load, 1),
        heldout_messages=len(heldout),
    )
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
