# CareLoop: `make run` starts the product with demo data; `make test` runs the whole suite.
# The virtualenv lives outside the repository, keyed by a hash of pyproject.toml, so CI's fresh
# clones reuse it. The project itself is not installed into it: commands run from the checkout.

PYTHON ?= python3
CACHE ?= $(HOME)/.cache/careloop
VENV := $(CACHE)/venv-$(shell cat pyproject.toml | sha256sum | cut -c1-16)
BIN := $(VENV)/bin
RUN := PYTHONPATH=$(CURDIR) $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-sqlite test-postgres lint venv system-deps worker scheduler clean

$(VENV)/.ready: pyproject.toml scripts/deps.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(PYTHON) scripts/deps.py dev > $(VENV)/requirements.txt
	$(BIN)/pip install -q -r $(VENV)/requirements.txt
	touch $@

venv: $(VENV)/.ready

# Debian packages the tests need (Chromium for the browser tests).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

run: venv
	$(RUN) -m backend.cli run --host $(HOST) --port $(PORT)

worker: venv
	$(RUN) -m backend.cli worker

scheduler: venv
	$(RUN) -m backend.cli scheduler

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy bots nlu channels backend questionnaires voice_ai

# The whole suite, every marker included; database tests run on SQLite and on PostgreSQL.
test: venv system-deps lint
	$(RUN) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache
