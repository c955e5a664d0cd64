# The CareLoop application image, shared by the api, worker and scheduler services in docker-compose.yml.
#
#   docker build -t careloop .
#
# Rasa runs in its own image (rasa/rasa), PostgreSQL and Redis in theirs.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system careloop \
 && useradd --system --gid careloop --no-create-home --home-dir /app --shell /usr/sbin/nologin careloop

WORKDIR /app

# pg_dump/pg_restore for `careloop backup` and `careloop restore` (Debian bookworm's 15, as the compose
# file's postgres:15: pg_dump must be at least the server's major version)
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*

# Dependencies first, in their own layer: rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
COPY scripts/deps.py scripts/deps.py
RUN python scripts/deps.py > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# Only what runs: no tests, no var/ (it may hold a developer's keys and database), no .git.
# tests/test_compose.py fails if a package listed in pyproject.toml is not copied here.
COPY content content
COPY backend backend
COPY bots bots
COPY channels channels
COPY nlu nlu
COPY questionnaires questionnaires
COPY voice_ai voice_ai
RUN pip install . \
 && rm -rf build ./*.egg-info

# The code finds content/ next to its packages (backend.app.settings.REPO_ROOT), which an installed
# copy in site-packages does not have; so the packages are imported from /app, like the Makefile
# runs them from the checkout. `pip install .` provides the dependencies and the
# `careloop` console script.
ENV PYTHONPATH=/app

USER careloop
EXPOSE 8000 2575

# Keys and URLs come from the environment (see docker-compose.yml); nothing secret is baked in.
CMD ["careloop", "serve", "--host", "0.0.0.0", "--port", "8000"]
