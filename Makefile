# The README's two commands: `make run` and `make test`. Each sets up .venv first (idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup lint fix bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Index the shipped help centre into the embedded engine (var/), then serve the API on 127.0.0.1:8080.
run: $(STAMP)
	$(BIN)/kb ingest knowledge/
	$(BIN)/kb serve

## Lint and type-check, then the whole test suite.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

fix: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/api_bench.py
	$(BIN)/python bench/api_bench.py --query-cache 4096

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache
