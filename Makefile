# Two commands do all setup on a fresh machine with python3 and make:
#   make dev    the whole stack on embedded defaults (creates .venv and installs on first use)
#   make test   lint, type-check and the whole test suite (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: dev test lint install tools histories screenshots clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# make does not pass SIGINT/SIGTERM on to its command: the stack stops when make goes.
# Flags for longhaul dev: make dev DEV_ARGS="--api-port 8001"
DEV_ARGS ?=
dev: $(STAMP)
	$(VENV)/bin/longhaul dev --stop-with-parent $(DEV_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Debian packages the tests use: wrk, the ingest benchmark's load generator (run at tiny size),
# PostgreSQL's server, which the storage, migration and API tests start on a free port (tests/postgres.py),
# and Chromium, which Playwright drives for the browser tests (no browser download).
TOOLS := $(if $(shell command -v wrk),,wrk) $(if $(wildcard /usr/lib/postgresql/*/bin/postgres),,postgresql) \
	$(if $(wildcard /usr/bin/chromium),,chromium)
tools:
	@[ -z "$(strip $(TOOLS))" ] || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(TOOLS); }

test: lint tools
	$(VENV)/bin/pytest

# Replay histories (docs/upgrades.md): run the pipelines' tests with the recorder on; it writes, as the
# session ends, a completed and a mid-flight history of each catalog workflow the tests ran.
# One pipeline: make histories TESTS=tests/test_tickets.py
TESTS ?= tests/test_hello.py tests/test_orders.py tests/test_video.py tests/test_maintenance.py \
	tests/test_tickets.py
histories: $(STAMP)
	LONGHAUL_RECORD_HISTORIES=tests/histories $(VENV)/bin/pytest -p no:cacheprovider $(TESTS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The dashboard's screenshots in docs/ (a dev server, worker, API and a few real runs; Chromium shoots).
screenshots: $(STAMP) tools
	$(PY) docs/screenshots.py docs
