# CareLoop: `make run` starts the product with demo data; `make test` runs the whole suite.
# The virtualenv lives outside the repository, keyed by a hash of pyproject.toml, so CI's fresh
# clones reuse it. The project itself is not installed into it: commands run from the checkout.

PYTHON ?= python3
CACHE ?= $(HOME)/.cache/careloop
VENV := $(CACHE)/venv-$(shell cat pyproject.toml scripts/deps.py | sha256sum | cut -c1-16)
BIN := $(VENV)/bin
RUN := PYTHONPATH=$(CURDIR) $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-sqlite test-postgres lint venv system-deps worker scheduler clean nlu nlu-serve nlu-stop nlu-eval axe

# The hash is in the name, so existence is the whole test: fresh clones (newer files) reuse it.
$(VENV)/.ready:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(PYTHON) scripts/deps.py dev > $(VENV)/requirements.txt
	$(BIN)/pip install -q -r $(VENV)/requirements.txt
	touch $@

venv: $(VENV)/.ready

# Debian packages the tests need (Chromium for the browser tests, espeak-ng for voice prompts and speech tests).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@command -v espeak-ng >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng; }

run: venv
	$(RUN) -m backend.app.cli run --host $(HOST) --port $(PORT)

worker: venv
	$(RUN) -m backend.app.cli worker

scheduler: venv
	$(RUN) -m backend.app.cli scheduler

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy bots nlu channels backend questionnaires voice_ai

# axe-core (accessibility rules, injected into pages by tests/browser/axe.py), from npm into the cache;
# the version is in the directory name, so existence is the whole test.
AXE_VERSION ?= 4
AXE_DIR := $(CACHE)/npm-axe-$(AXE_VERSION)
export CARELOOP_AXE_JS := $(AXE_DIR)/node_modules/axe-core/axe.min.js

$(CARELOOP_AXE_JS):
	@command -v npm >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
	npm install --silent --no-audit --no-fund --prefix $(AXE_DIR) axe-core@$(AXE_VERSION)

axe: $(CARELOOP_AXE_JS)

# The whole suite, every marker included; database tests run on SQLite and on PostgreSQL.
test: venv system-deps lint nlu axe
	$(RUN) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache

# Rasa NLU (nlu/rasa/): its own Python 3.10 virtualenv (Rasa 3.6 pins old libraries), keyed by a hash of
# nlu/rasa/requirements.txt; the model is keyed by a hash of the config and training data, so `make nlu`
# trains only when they changed. nlu/artifacts.py computes both paths for make and for the tests. The
# names carry the hashes, so existence is the whole test (no file-time prerequisites): a fresh clone,
# whose files are all newer than the shared cache, reuses the venv and the model.
export RASA_TELEMETRY_ENABLED := false
export RASA_CACHE_DIRECTORY := $(CACHE)/rasa-train-cache
export CARELOOP_CACHE := $(CACHE)
RASA_PYTHON ?= $(or $(shell $(PYTHON) nlu/artifacts.py python),$(shell command -v python3.10))
RASA_VENV := $(shell $(PYTHON) nlu/artifacts.py venv $(CACHE))
RASA_MODEL := $(shell $(PYTHON) nlu/artifacts.py model $(CACHE))
NLU_PORT ?= 5005

$(RASA_VENV)/.ready:
	@test -n "$(RASA_PYTHON)" || { echo "Rasa 3.6 needs Python 3.10 (pyenv install 3.10)"; exit 1; }
	$(RASA_PYTHON) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install -q -U pip
	$(RASA_VENV)/bin/pip install -q -r nlu/rasa/requirements.txt
	touch $@

# Trained into a temporary name, then renamed: an interrupted training never leaves a model behind.
$(RASA_MODEL): | $(RASA_VENV)/.ready
	mkdir -p $(dir $@)
	rm -rf $@.tmp && mkdir -p $@.tmp
	cd nlu/rasa && $(RASA_VENV)/bin/rasa train nlu --config config.yml --nlu data --out $@.tmp \
		--fixed-model-name model
	mv $@.tmp/model.tar.gz $@ && rm -rf $@.tmp

nlu: $(RASA_MODEL)

# A background server on 127.0.0.1:$(NLU_PORT) (log in var/rasa.log); returns once /status answers.
nlu-serve: nlu
	NLU_PORT=$(NLU_PORT) nlu/serve.sh $(RASA_VENV) $(RASA_MODEL)

nlu-stop:
	@if [ -f var/rasa.pid ]; then kill $$(cat var/rasa.pid) 2>/dev/null || true; rm -f var/rasa.pid; fi

# Per-intent precision/recall/F1 and accuracy per language on the held-out sets (nlu/rasa/tests/),
# against the running server (started here if none answers); the last line is JSON.
nlu-eval: venv nlu-serve
	$(RUN) -m nlu.evaluate --url http://127.0.0.1:$(NLU_PORT)
