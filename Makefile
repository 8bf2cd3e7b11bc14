# wangge — the two commands are `make run` and `make test`; everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test fuzz stop bench lint fmt typecheck openapi clean venv db console field browser \
	ha-up ha-down test-ha test-citus venv-runtime lock

## Installs come from the lock files (requirements/*.txt: every transitive dependency, pinned with
## its hashes; scripts/lock.sh regenerates them from pyproject.toml): `make run` installs the
## runtime set only, `make test` and the helpers the development set (a superset).
$(BIN)/python:
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null \
	  || { echo "installing python3-venv"; [ "$$(id -u)" = 0 ] && S= || S=sudo; \
	       $$S apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq python3-venv >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip

$(BIN)/.runtime: pyproject.toml requirements/runtime.txt | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check --require-hashes -r requirements/runtime.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

$(BIN)/.installed: pyproject.toml requirements/dev.txt | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check --require-hashes -r requirements/dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@ $(BIN)/.runtime

venv: $(BIN)/.installed

venv-runtime: $(BIN)/.runtime

## the console (console/): npm packages from the committed lock file, then the build into console/dist
CONSOLE_SRC := $(wildcard console/src/*) console/build.mjs

console/node_modules/.installed: console/package.json console/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "installing nodejs and npm"; [ "$$(id -u)" = 0 ] && S= || S=sudo; \
	  $$S apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq nodejs npm >/dev/null; }
	cd console && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

console/dist/index.html: console/node_modules/.installed $(CONSOLE_SRC)
	cd console && node build.mjs

console: console/dist/index.html

## the field app 网格通 (field/): the same toolchain; the build prints the app shell's gzipped size
FIELD_SRC := $(wildcard field/src/*) field/build.mjs

field/node_modules/.installed: field/package.json field/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "installing nodejs and npm"; [ "$$(id -u)" = 0 ] && S= || S=sudo; \
	  $$S apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq nodejs npm >/dev/null; }
	cd field && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

field/dist/index.html: field/node_modules/.installed $(FIELD_SRC)
	cd field && node build.mjs

field: field/dist/index.html

## the end-to-end test's browser: Debian's chromium (and a CJK font for the screenshots), only when missing
browser:
	@dpkg -s chromium fonts-wqy-microhei >/dev/null 2>&1 || { echo "installing chromium"; [ "$$(id -u)" = 0 ] && S= || S=sudo; \
	  $$S apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }

## make run: local PostGIS (unless DATABASE_URL is set), migrate, seed the demo, serve on PORT (8000)
run: venv-runtime console field
	@scripts/run.sh

## make test: the same set-up on a throwaway database, then the whole suite
test: venv console field browser
	@scripts/test.sh $(ARGS)

## make fuzz: schemathesis, every phase for every role, every check (but positive data
## acceptance), longer than in `make test`
fuzz: venv console field
	@FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-10} FUZZ_CHECKS=$${FUZZ_CHECKS:-all} FUZZ_TIMEOUT=$${FUZZ_TIMEOUT:-3600} \
	  scripts/test.sh -q -s tests/reliability/test_fuzz.py $(ARGS)

## make ha-up / ha-down: the local Patroni cluster (etcd + three PostgreSQL nodes, synchronous
## replication; scripts/ha.sh, docs/operations.md). Prints the multi-host DATABASE_URL.
ha-up: venv
	@scripts/ha.sh up

ha-down:
	@scripts/ha.sh down

## make test-ha: a fresh HA cluster, the read-replica and failover tests on it, the cluster removed
## make test-citus: the API suite on a Citus cluster (WANGGE_CITUS_URL: the coordinator, with its
## workers registered; scripts/citus.sh starts one from an installed Citus). Run by hand.
test-citus: venv console field
	@scripts/test-citus.sh $(ARGS)

test-ha: venv
	@scripts/ha.sh destroy >/dev/null 2>&1 || true
	@WANGGE_PG_FSYNC=$${WANGGE_PG_FSYNC:-off} scripts/ha.sh up
	@set +e; WANGGE_HA_TEST=1 .venv/bin/pytest -q -s -p no:cacheprovider tests/ops/test_replica.py tests/ops/test_failover.py $(ARGS); \
	  rc=$$?; scripts/ha.sh destroy; exit $$rc

## make lock: regenerate requirements/*.txt from pyproject.toml (uv, in its own venv)
lock:
	@scripts/lock.sh

## make stop: stop the project-local PostgreSQL cluster
stop:
	@scripts/localdb.sh stop

## make bench: benchmarks, printed as side-by-side ratios
bench: venv console field
	@scripts/bench.sh $(ARGS)

lint: venv
	$(BIN)/ruff check app geo tests bench migrations
	$(BIN)/ruff format --check app geo tests bench migrations
	$(BIN)/lint-imports

fmt: venv
	$(BIN)/ruff format app geo tests bench migrations
	$(BIN)/ruff check --fix app geo tests bench migrations

typecheck: venv
	$(BIN)/mypy app geo

## make openapi: regenerate the committed openapi.yaml from the app
openapi: venv
	$(BIN)/python -m app.openapi_dump > openapi.yaml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis console/node_modules console/dist field/node_modules field/dist
