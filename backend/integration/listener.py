"""`careloop hl7-listen`: the MLLP listener wired to the receiver, its thread pool and the settings."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from backend.app.settings import Settings
from backend.integration.mllp import Event, ListenerOptions, MllpListener
from backend.integration.receiver import Receiver, ReceiverConfig

log = logging.getLogger(__name__)


def listener_options(settings: Settings) -> ListenerOptions:
    context = None
    if settings.hl7_tls_cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(settings.hl7_tls_cert, settings.hl7_tls_key)
    return ListenerOptions(
        max_bytes=settings.hl7_max_message_bytes,
        frame_timeout=settings.hl7_frame_timeout_seconds,
        allowed_peers=tuple(settings.hl7_allowed_peers),
        ssl_context=context,
    )


def build_listener(settings: Settings, receiver: Receiver, pool: ThreadPoolExecutor) -> MllpListener:
    async def handle(event: Event, peer: str) -> bytes:
        # The database work (one commit per message) runs in the pool, never on the event loop.
        return await asyncio.get_running_loop().run_in_executor(pool, receiver.handle, event, peer)

    return MllpListener(handle, listener_options(settings))


async def run(
    settings: Settings,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    on_listening: Callable[[], object] | None = None,
) -> None:
    """One listener process: the event loop, its thread pool and its own connection pool."""
    from sqlalchemy.orm import sessionmaker

    from backend.app.db import make_engine

    # An engine of its own, without the pool's ping before each checkout: that is a round trip per
    # message, and a connection found dead on use raises OperationalError, which the receiver already
    # retries with a fresh one. One pooled connection per worker thread.
    engine = make_engine(settings.database_url, pool_pre_ping=False, pool_size=settings.hl7_workers)
    receiver = Receiver(
        sessionmaker(bind=engine, expire_on_commit=False), ReceiverConfig.from_settings(settings)
    )
    with ThreadPoolExecutor(max_workers=settings.hl7_workers, thread_name_prefix="hl7") as pool:
        listener = build_listener(settings, receiver, pool)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        bound_host, bound_port = await listener.start(host, port, reuse_port=reuse_port)
        if on_listening is not None:
            on_listening()
        else:
            # The line tests and operators wait for: the port is bound and messages are accepted.
            print(f"hl7 listening on {bound_host}:{bound_port}", flush=True)
        serving = asyncio.create_task(listener.serve_forever())
        await stop.wait()
        log.info("hl7 listener stopping")
        serving.cancel()
        await listener.close()
    engine.dispose()


def _child(host: str, port: int, ready: Any) -> None:
    """A listener process of `run_processes`: ends with its parent, says when it listens."""
    with contextlib.suppress(OSError, AttributeError):  # Linux: SIGTERM when the parent dies
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(process)d %(name)s %(message)s"
    )
    from backend.app.settings import get_settings

    asyncio.run(run(get_settings(), host, port, reuse_port=True, on_listening=ready.set))


def run_processes(settings: Settings, host: str, port: int) -> None:
    """`hl7_processes` listener processes on one port (SO_REUSEPORT): Python runs one thread at a time per
    process, so this is how the listener uses more than one core. Each connection stays with one process
    (its messages one at a time, ACKs in order); a process that dies is started again. Port 0 picks a
    free port first, which every process then binds."""
    placeholder = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    placeholder.bind((host, port))  # held (not listening, so given no connections) until the others bind
    port = placeholder.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> tuple[multiprocessing.process.BaseProcess, Any]:
        ready = context.Event()
        child = context.Process(target=_child, args=(host, port, ready), name="hl7-listener", daemon=False)
        child.start()
        return child, ready

    def started(
        child: multiprocessing.process.BaseProcess, ready: Any
    ) -> multiprocessing.process.BaseProcess:
        if not ready.wait(60):
            log.error("hl7 listener process %s did not start listening within 60 s", child.pid)
        return child

    def request_stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    children = [started(*pending) for pending in [start() for _ in range(settings.hl7_processes)]]
    placeholder.close()
    print(f"hl7 listening on {host}:{port} ({len(children)} processes)", flush=True)
    while not stopping:
        time.sleep(0.2)
        for i, child in enumerate(children):
            if not child.is_alive() and not stopping:
                log.warning("hl7 listener process %s ended (%s); starting another", child.pid, child.exitcode)
                children[i] = start()[0]  # not waited for: a stop request must not wait on its start
    for child in children:
        if child.is_alive() and child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)
    for child in children:
        child.join(15)
        if child.is_alive():
            child.kill()
