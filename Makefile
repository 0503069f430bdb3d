# Together: the two commands are `make run` and `make test`. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: help run test bench venv services db chromium wrk node-tools

help:
	@echo "make run    set up (venv, PostgreSQL, Redis, database, migrations, demo data) and serve on http://127.0.0.1:$(PORT)"
	@echo "make test   set up, install Chromium if missing, run the whole test suite (pytest -n 2)"
	@echo "make bench  requests/second of the API against a bare Django view"

## Serve the site with a Celery worker and beat; Ctrl-C stops all of them.
run:
	@bash scripts/run.sh

## The whole suite, two processes. pytest's exit code is make's (5: no tests ran).
test: venv services db chromium node-tools
	$(VENV)/bin/pytest -n 2

## Writes the table and bench/results.json (per machine, not committed). BENCH_ARGS, e.g. --only whoami.
bench: venv services wrk
	$(PY) bench/run.py $(BENCH_ARGS)

venv:
	@bash scripts/ensure-venv.sh

services:
	@bash scripts/ensure-services.sh

db: venv services
	@$(PY) scripts/ensure_db.py

chromium:
	@bash scripts/ensure-chromium.sh

wrk:
	@bash scripts/ensure-wrk.sh

## The contract tests' pinned Node tools (npm ci, again only when their lock file changes).
node-tools:
	@bash scripts/ensure-node-tools.sh
