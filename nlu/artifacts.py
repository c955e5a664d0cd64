"""Where `make nlu` keeps the Rasa virtualenv and the trained model: paths keyed by content hashes.

The Makefile and the test fixtures both ask this module, so the two can never disagree. The venv is
keyed by nlu/rasa/requirements.lock; the model by the config, jieba's user dictionary and every
training file (path and content), so editing any training example retrains and nothing else does.
The held-out test sets (nlu/rasa/tests/) are deliberately not part of the model's key.

    python3 nlu/artifacts.py venv|model|fingerprint|python [CACHE_DIR]
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RASA_DIR = ROOT / "nlu" / "rasa"
REQUIREMENTS = RASA_DIR / "requirements.lock"  # exact versions with hashes, from requirements.txt
CONFIG = RASA_DIR / "config.yml"
PYENV_VERSIONS = Path("/root/.pyenv/versions")
DEFAULT_CACHE = Path.home() / ".cache" / "careloop"


def training_files() -> list[Path]:
    """The config, the jieba user dictionary and every training file, in a stable order."""
    return [CONFIG, *sorted((RASA_DIR / "jieba").glob("*.txt")), *sorted((RASA_DIR / "data").rglob("*.yml"))]


def model_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in training_files():
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def venv_dir(cache: Path = DEFAULT_CACHE) -> Path:
    return cache / f"rasa-venv-{hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]}"


def model_path(cache: Path = DEFAULT_CACHE) -> Path:
    return cache / "rasa-models" / f"{model_fingerprint()}.tar.gz"


def python310() -> Path | None:
    """The newest pyenv Python 3.10 (Rasa 3.6 supports 3.8-3.10 only), else None."""
    found = sorted(
        PYENV_VERSIONS.glob("3.10.*/bin/python"),
        key=lambda p: tuple(int(x) if x.isdigit() else -1 for x in p.parts[-3].split(".")),
    )
    return found[-1] if found else None


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "model"
    cache = Path(argv[1]) if len(argv) > 1 else DEFAULT_CACHE
    if what == "venv":
        print(venv_dir(cache))
    elif what == "model":
        print(model_path(cache))
    elif what == "fingerprint":
        print(model_fingerprint())
    elif what == "python":
        print(python310() or "")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
