# wangge — the two commands are `make run` and `make test`; everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test fuzz stop bench lint fmt typecheck openapi clean venv db

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null \
	  || { echo "installing python3-venv"; [ "$$(id -u)" = 0 ] && S= || S=sudo; \
	       $$S apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq python3-venv >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

venv: $(BIN)/.installed

## make run: local PostGIS (unless DATABASE_URL is set), migrate, seed the demo, serve on PORT (8000)
run: venv
	@scripts/run.sh

## make test: the same set-up on a throwaway database, then the whole suite
test: venv
	@scripts/test.sh $(ARGS)

## make fuzz: schemathesis, every phase for every role, longer than in `make test`
fuzz: venv
	@FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-10} scripts/test.sh -q -s tests/reliability/test_fuzz.py $(ARGS)

## make stop: stop the project-local PostgreSQL cluster
stop:
	@scripts/localdb.sh stop

## make bench: benchmarks, printed as side-by-side ratios
bench: venv
	@scripts/bench.sh $(ARGS)

lint: venv
	$(BIN)/ruff check app geo tests bench migrations
	$(BIN)/ruff format --check app geo tests bench migrations

fmt: venv
	$(BIN)/ruff format app geo tests bench migrations
	$(BIN)/ruff check --fix app geo tests bench migrations

typecheck: venv
	$(BIN)/mypy app geo

## make openapi: regenerate the committed openapi.yaml from the app
openapi: venv
	$(BIN)/python -m app.openapi_dump > openapi.yaml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
