"""vosk (Kaldi) with a per-language model directory and a grammar (JSON word list) per question."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voice_ai.asr import ModelMissing, Recognition, clean_grammar

UNKNOWN = "[unk]"  # lets vosk say "none of these" instead of forcing the nearest phrase
_MODELS: dict[Path, Any] = {}
_MODELS_LOCK = threading.Lock()


def _vosk() -> Any:
    try:
        import vosk
    except ImportError as e:  # pragma: no cover - a dependency in pyproject.toml
        raise RuntimeError("vosk is not installed (pip install vosk)") from e
    vosk.SetLogLevel(-2)  # errors only; a grammar word outside the model is checked by us
    return vosk


def check_model_dir(model_dir: Path) -> Path:
    """The directory, or ModelMissing naming it: called at start-up so a bad setting fails early."""
    path = Path(model_dir)
    if not path.is_dir():
        raise ModelMissing(f"vosk model directory {path} does not exist")
    if not (path / "am" / "final.mdl").is_file():
        raise ModelMissing(f"vosk model directory {path} has no am/final.mdl: not a vosk model")
    return path


def model_sha256(model_dir: Path) -> str:
    """The SHA-256 of a model directory: of the lines `<sha256 of the file>  ./<path>` for every file,
    sorted by path byte-wise, which is what `find . -type f -print0 | LC_ALL=C sort -z | xargs -0
    sha256sum | sha256sum` prints in the directory, so an operator can check it with coreutils alone.
    Symbolic links are followed to files (a model unpacked with links hashes like one copied whole)."""
    root = check_model_dir(model_dir)
    listing = hashlib.sha256()
    files = sorted(
        (p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix().encode()
    )
    for path in files:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        listing.update(f"{digest.hexdigest()}  ./{path.relative_to(root).as_posix()}\n".encode())
    return listing.hexdigest()


def load_model(model_dir: Path) -> Any:
    """One loaded model per directory per process (loading takes seconds and hundreds of MB)."""
    path = check_model_dir(model_dir).resolve()
    with _MODELS_LOCK:
        if path not in _MODELS:
            _MODELS[path] = _vosk().Model(str(path))
        return _MODELS[path]


class VoskRecogniser:
    """Kaldi resamples internally, so 8 kHz telephone audio goes in as it is."""

    engine = "vosk"  # confidence: the least sure word's posterior from the lattice

    def __init__(self, model_dir: Path, sample_rate: int = 8000) -> None:
        self.model_dir = Path(model_dir)
        self.sample_rate = sample_rate
        self._model = load_model(self.model_dir)
        self._rec: Any = None

    def start(self, grammar: Sequence[str]) -> None:
        phrases = clean_grammar(grammar)
        if not phrases:
            raise ValueError("an empty grammar: nothing to listen for")
        words = json.dumps([*phrases, UNKNOWN], ensure_ascii=False)
        rec = _vosk().KaldiRecognizer(self._model, float(self.sample_rate), words)
        rec.SetWords(True)
        self._rec = rec

    def accept(self, pcm: bytes) -> None:
        if self._rec is None:
            raise RuntimeError("start() the recogniser with a grammar first")
        self._rec.AcceptWaveform(pcm)

    def result(self) -> Recognition:
        if self._rec is None:
            raise RuntimeError("start() the recogniser with a grammar first")
        raw = json.loads(self._rec.FinalResult())
        self._rec = None
        words = [w for w in raw.get("result", []) if w.get("word") != UNKNOWN]
        text = " ".join(w["word"] for w in words)
        if not text:
            return Recognition("", 0.0)
        return Recognition(text, min(float(w.get("conf", 0.0)) for w in words))
