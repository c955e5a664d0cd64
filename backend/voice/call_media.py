"""What a call carries outside the database: the signed stream token (and the stream's URL and
parameters every gateway hands to the call), and the sealed audio of open answers."""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, URLSafeSerializer

from backend.app.settings import Settings
from backend.security.crypto import current_cipher
from backend.voice.calls import UnknownCall
from voice_ai.gateway import AnsweredBy


def stream_token(settings: Settings, call_id: int) -> str:
    """Signs the call id carried in the Media Stream's parameters: only our TwiML can open a stream."""
    return URLSafeSerializer(settings.secret_key.get_secret_value(), salt="voice-stream").dumps(call_id)


def stream_url(settings: Settings) -> str:
    base = settings.public_url
    ws = (
        "wss://" + base.removeprefix("https://")
        if base.startswith("https://")
        else "ws://" + base.removeprefix("http://")
    )
    return f"{ws}/voice/stream"


def stream_parameters(settings: Settings, call_id: int, by: AnsweredBy | None) -> dict[str, str]:
    return {"token": stream_token(settings, call_id), "answered_by": by.value if by else "unknown"}


def read_stream_token(settings: Settings, token: str) -> int:
    try:
        value = URLSafeSerializer(settings.secret_key.get_secret_value(), salt="voice-stream").loads(token)
    except BadSignature as exc:
        raise UnknownCall("stream token does not verify") from exc
    if not isinstance(value, int):
        raise UnknownCall("stream token does not name a call")
    return value


def answer_audio_kind(call_id: int) -> str:
    """What a call's kept answer audio is sealed with (bound in as associated data)."""
    return f"voice:{call_id}"


def keep_answer_audio(settings: Settings, call_id: int, pcm: bytes) -> str:
    """An open answer's audio, sealed under the data key with the call id bound in; returns its name."""
    name = f"{secrets.token_hex(16)}.voice"
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    (settings.media_dir / name).write_bytes(current_cipher().seal(answer_audio_kind(call_id), pcm))
    return name


def load_answer_audio(settings: Settings, call_id: int, name: str) -> bytes:
    if not name.endswith(".voice") or "/" in name or name.startswith("."):
        raise FileNotFoundError(name)
    return current_cipher().unseal(answer_audio_kind(call_id), (settings.media_dir / name).read_bytes())
