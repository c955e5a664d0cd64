"""Field encryption cost: CPU microseconds to encrypt and to decrypt one value, AES-GCM against SM4
(SM4-CTR with HMAC-SM3), for the values a turn and an inbox page handle (a name, a chat message, a
questionnaire's answers), and for a page's worth of rows.

Run from the repository root:

    PYTHONPATH=. python bench/crypto.py

CPU time (`time.process_time`), not wall time, so the figures hold on a machine shared with other work.
The output ends with one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.security.crypto import Algorithm, FieldCipher
from bench.harness import report

ROUNDS = 20_000
VALUES = {
    "name": "王小明",
    "message": "我昨天出院以后伤口有点渗血，今天早上量体温37.8度，需要回医院吗？" * 2,
    "answers": json.dumps({f"q{i}": "somewhat better than last week" for i in range(12)}, ensure_ascii=False),
}
# an inbox page: 50 task rows (a name each) and a 40-message thread
PAGE = {"name": 50, "message": 40}


def _cpu_us(fn: object, rounds: int) -> float:
    start = time.process_time()
    for _ in range(rounds):
        fn()  # type: ignore[operator]
    return (time.process_time() - start) / rounds * 1e6


def measure(algorithm: Algorithm) -> dict[str, float]:
    cipher = FieldCipher(os.urandom(32), algorithm=algorithm)
    out: dict[str, float] = {}
    for label, value in VALUES.items():
        token = cipher.encrypt("bench", value)
        out[f"{label}_encrypt_us"] = _cpu_us(lambda v=value: cipher.encrypt("bench", v), ROUNDS)
        out[f"{label}_decrypt_us"] = _cpu_us(lambda t=token: cipher.decrypt("bench", t), ROUNDS)
    out["inbox_page_decrypt_ms"] = sum(out[f"{k}_decrypt_us"] * n for k, n in PAGE.items()) / 1000
    return out


def main() -> None:
    results = {}
    for algorithm in Algorithm:
        figures = measure(algorithm)
        results[algorithm.value] = figures
        print(f"== {algorithm.value}")
        for name, value in figures.items():
            print(f"  {name:24} {value:8.2f}")
    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.1f}")
    report(
        {
            "aes_gcm_message_decrypt_us": round(results["aes-gcm"]["message_decrypt_us"], 2),
            "aes_gcm_inbox_page_decrypt_ms": round(results["aes-gcm"]["inbox_page_decrypt_ms"], 3),
            "sm4_message_decrypt_us": round(results["sm4"]["message_decrypt_us"], 2),
            "sm4_inbox_page_decrypt_ms": round(results["sm4"]["inbox_page_decrypt_ms"], 3),
            "load": round(load, 1),
        }
    )


if __name__ == "__main__":
    main()
