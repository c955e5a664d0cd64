"""`careloop hl7-listen`: the MLLP listener wired to the receiver, its thread pool and the settings."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from concurrent.futures import ThreadPoolExecutor

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


async def run(settings: Settings, host: str, port: int) -> None:
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
        bound_host, bound_port = await listener.start(host, port)
        # The line tests and operators wait for: the port is bound and messages are accepted.
        print(f"hl7 listening on {bound_host}:{bound_port}", flush=True)
        serving = asyncio.create_task(listener.serve_forever())
        await stop.wait()
        log.info("hl7 listener stopping")
        serving.cancel()
        await listener.close()
    engine.dispose()
