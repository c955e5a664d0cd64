"""LDAP sign-in's directory part: wall time of one `authenticate` (connect, service bind, the user search
with her memberOf, a second connection bound as her) against a real slapd on loopback, in plain LDAP and
with StartTLS (a P-256 certificate made here), beside one argon2 password check (what the local sign-in
spends instead). Sequential sign-ins, as staff arrive at a shift change; the database part of a sign-in is
the same for both and is not timed here.

Run from the repository root (Debian's slapd and ldap-utils: `make system-deps`):

    PYTHONPATH=. python bench/ldap_sign_in.py [--rounds 50]

The output ends with one JSON line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.security.auth import hash_password
from backend.security.ldap_directory import DirectoryConfig, authenticate
from bench.harness import percentile, report
from tests.backend.security import slapd


def _config(server: slapd.Slapd, *, tls: bool) -> DirectoryConfig:
    return DirectoryConfig(
        urls=(server.url,),
        start_tls=tls,
        ca_file=str(server.cert_file) if tls and server.cert_file else "",
        bind_dn=slapd.SERVICE_DN,
        bind_password=slapd.SERVICE_PASSWORD,
        user_base=slapd.STAFF_BASE,
        user_filter="(uid={username})",
        name_attribute="displayName",
        group_base="",
        group_filter="",
        timeout=5,
    )


def _times(fn: object, rounds: int) -> list[int]:
    taken = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        fn()  # type: ignore[operator]
        taken.append(time.perf_counter_ns() - start)
    return sorted(taken)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    rounds = parser.parse_args().rounds
    figures: dict[str, float | int] = {"rounds": rounds}
    with tempfile.TemporaryDirectory(prefix="careloop-bench-ldap-") as directory:
        server = slapd.start(Path(directory), tls=True)
        try:
            for name, tls in (("plain", False), ("starttls", True)):
                config = _config(server, tls=tls)
                user = authenticate(config, "head.wang", slapd.PASSWORDS["head.wang"])
                assert len(user.groups) == 3, user  # the memberOf answer is there: a real sign-in's work
                taken = _times(
                    lambda c=config: authenticate(c, "head.wang", slapd.PASSWORDS["head.wang"]), rounds
                )
                figures[f"{name}_p50_ms"] = round(percentile(taken, 50), 2)
                figures[f"{name}_p95_ms"] = round(percentile(taken, 95), 2)
                print(
                    f"{name:9} p50 {figures[f'{name}_p50_ms']:7.2f} ms  p95 {figures[f'{name}_p95_ms']:7.2f} ms"
                )
        finally:
            server.stop()
    from argon2 import PasswordHasher

    hashed = hash_password("a-local-password-1")
    hasher = PasswordHasher()
    taken = _times(lambda: hasher.verify(hashed, "a-local-password-1"), max(20, rounds // 4))
    figures["argon2_p50_ms"] = round(percentile(taken, 50), 2)
    print(f"argon2    p50 {figures['argon2_p50_ms']:7.2f} ms (the local sign-in's password check)")
    report(figures)


if __name__ == "__main__":
    main()
