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

.PHONY: help setup run test lint format docs lock clean bench bench-features bench-activation

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
	$(PY) -m pytest --durations=12

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

bench-features: setup ## Time full-refresh vs one-day incremental build of the feature models (DATE=YYYY-MM-DD, built home)
	$(PY) -m journeys.feature_bench $(DATE)

lock: ## Re-resolve requirements.lock from pyproject.toml (needs the package registry)
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev -p $(PY) --no-header --no-annotate -o requirements.lock

clean: ## Delete generated data (JOURNEYS_HOME's default data/ folder)
	rm -rf data

# Airflow, locally: its home under the data folder, SQLite, LocalExecutor with 2 slots (a laptop
# has few cores), the API server on loopback. The same settings serve `make backfill`.
AIRFLOW := $(VENV)/bin/airflow
AIRFLOW_PORT ?= 8080
AIRFLOW_URL := http://127.0.0.1:$(AIRFLOW_PORT)
JOURNEYS_DATA := $(abspath $(or $(JOURNEYS_HOME),data))
AIRFLOW_HOME ?= $(JOURNEYS_DATA)/airflow
REPROCESS ?= none
airflow backfill: export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
airflow backfill: export JOURNEYS_HOME := $(JOURNEYS_DATA)
airflow backfill: export AIRFLOW_HOME := $(AIRFLOW_HOME)
airflow backfill: export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
airflow backfill: export AIRFLOW__CORE__LOAD_EXAMPLES := False
airflow backfill: export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION := False
airflow backfill: export AIRFLOW__CORE__EXECUTOR := LocalExecutor
airflow backfill: export AIRFLOW__CORE__PARALLELISM := 2
airflow backfill: export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS := admin:admin
airflow backfill: export AIRFLOW__CORE__EXECUTION_API_SERVER_URL := $(AIRFLOW_URL)/execution/
airflow backfill: export AIRFLOW__API__HOST := 127.0.0.1
airflow backfill: export AIRFLOW__API__PORT := $(AIRFLOW_PORT)
airflow backfill: export AIRFLOW__API__BASE_URL := $(AIRFLOW_URL)
airflow backfill: export AIRFLOW__API__WORKERS := 1
airflow backfill: export AIRFLOW__COSMOS__CACHE_DIR := $(AIRFLOW_HOME)/cosmos

.PHONY: airflow backfill

airflow: setup ## Start Airflow locally (UI, scheduler; DAGs unpaused) and print the URL and login
	$(PY) -m journeys.orchestration manifest
	@mkdir -p $(AIRFLOW_HOME)
	$(AIRFLOW) db migrate > $(AIRFLOW_HOME)/db-migrate.log
	$(AIRFLOW) pools set customer_journeys_warehouse 1 "DuckDB warehouse: one writer at a time" -o plain
	$(AIRFLOW) dags reserialize > $(AIRFLOW_HOME)/reserialize.log 2>&1
	$(AIRFLOW) dags unpause --treat-dag-id-as-regex -y '^customer_journeys_' -o plain 2> /dev/null
	@$(PY) -m journeys.orchestration login $(AIRFLOW_HOME) $(AIRFLOW_URL)
	@echo "Alerts: $(JOURNEYS_DATA)/alerts/   Logs: $(AIRFLOW_HOME)/logs/   Stop: Ctrl-C"
	$(AIRFLOW) standalone

backfill: setup ## Run the nightly DAG for FROM..TO (YYYY-MM-DD, inclusive), a day at a time (needs make airflow)
	@[ -n "$(FROM)" ] && [ -n "$(TO)" ] || { echo "usage: make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD [REPROCESS=none|failed|completed]"; exit 2; }
	@$(AIRFLOW) jobs check --job-type SchedulerJob > /dev/null 2>&1 || { echo "no Airflow scheduler is running: start 'make airflow' (in another terminal) first"; exit 1; }
	$(PY) -m journeys.orchestration manifest
	$(AIRFLOW) backfill create --dag-id customer_journeys_nightly --from-date $(FROM) --to-date $(TO) --max-active-runs 1 --reprocess-behavior $(REPROCESS)
	@echo "Backfill queued: days $(FROM)..$(TO), oldest first. Follow it at $(AIRFLOW_URL)/dags/customer_journeys_nightly"
bench-activation: setup ## Time publication and every activation export at CUSTOMERS (default 3000; try 1000000)
	$(PY) -m journeys.activation_bench --customers $(CUSTOMERS) --home $${TMPDIR:-/tmp}/journeys-bench-activation
