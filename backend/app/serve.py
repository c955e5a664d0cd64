"""HTTP workers for `careloop serve --workers N`: pre-forked processes, each listening on its own
SO_REUSEPORT socket, so the kernel spreads new connections evenly across them; and the address links
are built on when no public URL is set (the one served).

uvicorn's own multi-worker mode shares one listening socket. Whichever worker wakes first accepts
every connection waiting (asyncio accepts up to the backlog per wake-up), so a burst of keep-alive
connections (a reverse proxy's upstream pool, a load test) lands mostly on one worker: measured on
16 connections, one worker used 89 % of a core while the other used 27 %. With a socket per worker
the kernel hashes each connection to one of them.

The parent only supervises: it forwards SIGTERM/SIGINT to the workers, waits for them, and starts a
new worker when one dies unexpectedly. Where SO_REUSEPORT is missing, uvicorn's shared socket serves.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)
BACKLOG = 2048
_RESPAWN_PAUSE_S = 1.0  # a worker that dies at once (a broken deploy) is not restarted in a tight loop


def reuseport_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound with SO_REUSEPORT (one per worker; all on the same address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def run_workers(
    host: str,
    port: int,
    workers: int,
    serve_one: Callable[[socket.socket], Any],
    *,
    extra: Callable[[], Any] | None = None,
) -> int:
    """Fork `workers` processes that each call serve_one(its own socket), and one more that calls
    `extra` if given; supervise them until told to stop, restarting any that dies meanwhile.

    Returns 0 after a requested shutdown. The parent binds a first socket before forking, so a port in
    use fails here, once, with the error, instead of in every worker."""
    listening_socket(host, port).close()  # fails fast (address in use, bad host) before any fork
    stopping = False
    children: dict[int, int] = {}  # pid -> slot (0..workers-1 serve HTTP; `workers` runs `extra`)

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the child
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 1
            try:
                if slot < workers:
                    serve_one(listening_socket(host, port))
                elif extra is not None:
                    extra()
                code = 0
            except BaseException:
                log.exception("server process %d failed", slot)
            finally:
                os._exit(code)
        children[pid] = slot

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for first in range(workers + (1 if extra is not None else 0)):
            spawn(first)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            ended = children.pop(pid) if pid in children else None
            if ended is None or stopping:
                continue
            log.warning(
                "server process %d (pid %d) exited with status %d; starting another", ended, pid, status
            )
            time.sleep(_RESPAWN_PAUSE_S)
            if not stopping:
                spawn(ended)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


_WILDCARDS = {"0.0.0.0", "::", ""}  # noqa: S104  (names, not a bind)
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def served_url(host: str, port: int) -> str:
    """The address a browser on this machine reaches the server at: links' base when no public URL is
    set. A wildcard bind (all interfaces) has no one address; links then use the loopback one."""
    return f"http://{_url_host('127.0.0.1' if host in _WILDCARDS else host)}:{port}"


def public_url_mismatch(public_url: str, host: str, port: int) -> str | None:
    """Why links built on an explicit public URL would not reach this server, else None.

    Only a URL naming this machine (loopback, the bound host, or any host for a wildcard bind) is
    checked: one naming another host is a reverse proxy's address, and a port there differs by design."""
    parts = urlsplit(public_url)
    named = parts.hostname or ""
    if named not in _LOOPBACK and named != host.strip("[]"):
        return None
    if (parts.port or (443 if parts.scheme == "https" else 80)) == port:
        return None
    return (
        f"CARELOOP_PUBLIC_URL is {public_url} but the server listens on {served_url(host, port)}:"
        " links sent to patients will not reach it (unset it to follow the server, or fix it)"
    )
