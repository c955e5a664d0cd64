# CareLoop: `make run` starts the product with demo data; `make test` runs the whole suite.
# Dependencies come from requirements.lock (exact versions with hashes; `make lock` refreshes it). The
# virtualenv lives outside the repository, keyed by a hash of the lock, so CI's fresh clones reuse it;
# the checkout itself is installed into it (editable), so the venv's bin/careloop is a command.

PYTHON ?= python3
CACHE ?= $(HOME)/.cache/careloop
LOCK := requirements.lock
VENV := $(CACHE)/venv-$(shell sha256sum $(LOCK) | cut -c1-16)
BIN := $(VENV)/bin
RUN := PYTHONPATH=$(CURDIR) $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Tests run on every core (pytest-xdist); `make test PYTEST_WORKERS=0` runs them serially.
PYTEST_WORKERS ?= auto
# Bytecode is written even where the environment turns it off (PYTHONDONTWRITEBYTECODE): otherwise every
# process started (the tests' xdist workers, servers, job workers, command-line tests) compiles the product again.
unexport PYTHONDONTWRITEBYTECODE
.PHONY: run test lint venv venv-bin lock system-deps worker scheduler clean nlu nlu-serve nlu-stop nlu-eval axe

# The hash is in the name, so existence is the whole test: fresh clones (newer files) reuse it. pip checks
# every file against the lock's hashes; Python's bundled pip is enough for that, so it is not upgraded.
$(VENV)/.ready:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r $(LOCK)
	touch $@

# The checkout, installed editable (no dependencies: they came from the lock; setuptools from the lock
# builds it). Several checkouts share a venv, so this is redone whenever another checkout, or another
# pyproject.toml, was installed last; it takes about two seconds.
EDITABLE := $(CURDIR) $(shell sha256sum pyproject.toml | cut -c1-16)
venv: $(VENV)/.ready
	@if [ "$$(cat $(VENV)/.editable 2>/dev/null)" != "$(EDITABLE)" ]; then \
		$(BIN)/pip install -q --no-deps --no-build-isolation -e . && echo "$(EDITABLE)" > $(VENV)/.editable; \
	fi

# Where the commands live: `$$(make -s venv-bin)/careloop totp-code admin`, or put it on PATH.
venv-bin: venv
	@echo $(BIN)

# Re-resolve the lock files after a change to pyproject.toml's dependencies or nlu/rasa/requirements.txt.
# Versions already locked are kept; `make lock LOCK_ARGS=--upgrade` (or --upgrade-package NAME) moves them.
# uv rather than pip-tools: it resolves both files in seconds, for a Python other than the one it runs on
# (Rasa's 3.10), and universally (markers for every platform) from one run; pip installs what it wrote.
UV_VERSION := 0.13.9
UV := $(CACHE)/uv-$(UV_VERSION)/bin/uv
$(UV):
	$(PYTHON) -m venv $(CACHE)/uv-$(UV_VERSION)
	$(CACHE)/uv-$(UV_VERSION)/bin/pip install -q uv==$(UV_VERSION)

lock: $(UV)
	$(UV) pip compile -q pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" $(LOCK_ARGS) -o $(LOCK)
	$(UV) pip compile -q nlu/rasa/requirements.txt --python-version 3.10 --python-platform x86_64-manylinux_2_28 \
		--generate-hashes --custom-compile-command "make lock" $(LOCK_ARGS) -o nlu/rasa/requirements.lock

# Debian packages the tests need (Chromium for the browser tests, espeak-ng for voice prompts and speech tests,
# kamailio and baresip as the SIP proxy and the phone the SIP gateway's tests call, asterisk's recorded digits
# for real speech, PostgreSQL's client tools for the backup drill, slapd and ldap-utils for LDAP sign-in).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@command -v espeak-ng >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng; }
	@command -v kamailio >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kamailio; }
	@command -v baresip >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq baresip; }
	@# Real human speech for the voice tests and bench/voice_calibration.py: one professional speaker's
	@# digits, 8 kHz (Allison Smith, CC-BY-SA-3.0; attribution in docs/voice.md)
	@test -d /usr/share/asterisk/sounds/en_US_f_Allison/digits || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq asterisk-core-sounds-en-wav; }
	@# pg_dump and pg_restore for `careloop backup`/`restore` and the restore drill (tests/backend/backup)
	@command -v pg_dump >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client; }
	@# OpenLDAP's slapd and its client tools: the LDAP sign-in tests start their own slapd on a loopback port
	@# (tests/backend/security/slapd.py; never the system's, which the package leaves stopped in containers)
	@command -v slapd >/dev/null 2>&1 || test -x /usr/sbin/slapd || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slapd; }
	@command -v ldapadd >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ldap-utils; }
	@# Chinese text in Chromium's pages and screenshots (boxes without a CJK font)
	@test -d /usr/share/fonts/opentype/noto || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk; }

run: venv
	$(BIN)/careloop run --host $(HOST) --port $(PORT)

worker: venv
	$(BIN)/careloop worker

scheduler: venv
	$(BIN)/careloop scheduler

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

# The whole suite, every marker included; database tests run on SQLite and on PostgreSQL. The 25 slowest
# tests are printed at the end (each capability keeps its tests to a few minutes; volumes go to bench/).
test: venv system-deps lint nlu axe
	$(RUN) -m pytest -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadgroup --durations=25 $(PYTEST_ARGS)

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache

# Rasa NLU (nlu/rasa/): its own Python 3.10 virtualenv (Rasa 3.6 pins old libraries), keyed by a hash of
# nlu/rasa/requirements.lock (made from requirements.txt by `make lock`); the model is keyed by a hash of
# the config and training data, so `make nlu` trains only when they changed. nlu/artifacts.py computes both paths for make and for the tests. The
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
	$(RASA_VENV)/bin/pip install -q --require-hashes -r nlu/rasa/requirements.lock
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
