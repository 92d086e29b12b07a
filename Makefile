# Customer Journeys — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
JOURNEYS := $(VENV)/bin/journeys
UV_VERSION := 0.13.9

# Sample data `make run` generates: a year of daily deliveries for a few thousand people.
CUSTOMERS ?= 3000
DAYS ?= 365
START ?= 2025-01-01
SEED ?= 42
# `make bench`: tiny | small | 100k | 1m; BENCH_ARGS passes more options (see --help).
SCALE ?= 1m
BENCH_ARGS ?=

export DO_NOT_TRACK := true
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := False

.PHONY: help setup run test lint format docs lock clean bench

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## Create the virtual environment from requirements.lock (when missing or stale)

$(VENV)/.installed: requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync --quiet --compile-bytecode -p $(PY) requirements.lock
	$(VENV)/bin/uv pip install --quiet -p $(PY) --no-deps -e .
	@touch $@

run: setup ## Generate sample exports and run the whole nightly pipeline on them
	$(JOURNEYS) generate --customers $(CUSTOMERS) --days $(DAYS) --start $(START) --seed $(SEED)
	$(JOURNEYS) run

test: setup ## Run the test suite (offline, on small generated data)
	$(PY) -m pytest

lint: setup ## Lint Python (ruff) and the dbt SQL (sqlfluff, dbt templater, duckdb dialect)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	JOURNEYS_WAREHOUSE=$${JOURNEYS_WAREHOUSE:-$$(mktemp -d)/lint.duckdb} $(VENV)/bin/sqlfluff lint dbt_project/models

format: setup ## Format Python with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup ## Benchmarks at SCALE (default 1m; small takes minutes): table + bench/results.json
	$(PY) -m journeys.bench --scale $(SCALE) --seed $(SEED) $(BENCH_ARGS)

docs: setup ## Build the dbt docs site (lineage included) and serve it on localhost:8080
	$(PY) -m journeys.docs

lock: ## Re-resolve requirements.lock from pyproject.toml (needs the package registry)
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev -p $(PY) --no-header --no-annotate -o requirements.lock

clean: ## Delete generated data (JOURNEYS_HOME's default data/ folder)
	rm -rf data
