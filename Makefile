# The README's two commands: `make run` and `make test`. Each sets up .venv first (idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-deps setup lint fix bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Index the shipped help centre into the embedded engine (var/), then serve the API and the web console
## on 127.0.0.1:8000; a first run also sends 300 demo questions so the analytics report is not empty.
run: $(STAMP)
	$(BIN)/kb ingest knowledge/
	$(BIN)/kb serve --demo-traffic 300

## Lint and type-check, then the whole test suite (with the system packages its browser and PostgreSQL
## tests use, when this machine can install them; otherwise those tests say why they are skipped).
test: $(STAMP) test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

# Debian's chromium (browser tests) and PostgreSQL (the answer log's second backend), from the
# distribution's registry. Best effort: without root or apt the tests that need them are skipped.
test-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium chromium-driver"; \
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing$$missing (apt-get)"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null 2>&1 \
			|| { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null 2>&1; } \
			|| echo "could not install$$missing: the tests that need them will be skipped"; \
		else \
			echo "not installed:$$missing (needs root and apt-get): the tests that need them will be skipped"; \
		fi; \
	fi

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
