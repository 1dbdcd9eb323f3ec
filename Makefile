# referral_pipeline — the two commands a newcomer needs are `make run` and `make test`.
# Everything else (venv, lock, sandbox) is set up on demand from the committed lock file.

PYTHON        ?= python3
VENV          := .venv
BIN           := $(VENV)/bin
INSTALLED     := $(VENV)/.installed
UV_VERSION    := 0.13.8

SANDBOX_DATA  ?=
SANDBOX_SCALE ?= small
SANDBOX_SEED  ?= 1
SANDBOX_STATE ?= data/sandbox-state
SANDBOX_PORT_BASE ?= 8700
SANDBOX_FAULTS ?=
SANDBOX       ?= on
JOB           ?= nightly
AS_OF         ?=
CONFIG        ?=
DUCKDB_PATH   ?= data/referral.duckdb

export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: help venv run test dev sandbox clean-data bench lock

help:
	@echo "make run         run the nightly job once against the built-in sandbox and print a summary"
	@echo "make test        run the whole test suite"
	@echo "make dev         sandbox + dagster dev on http://127.0.0.1:3000"
	@echo "make sandbox     the sandbox in the foreground"
	@echo "make bench       benchmarks (results: docs/benchmarks.md)"
	@echo "make clean-data  remove the DuckDB file and the sandbox state"
	@echo "make lock        re-resolve requirements.lock from pyproject.toml"

venv: $(INSTALLED)

$(INSTALLED): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(INSTALLED)

lock: $(INSTALLED)
	$(BIN)/uv pip compile pyproject.toml --extra test --python-version 3.11 -o requirements.lock

# Two workers (the reference machine has 2 cores); a test file stays on one worker (module fixtures).
TEST_WORKERS ?= 2

test: $(INSTALLED)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

SANDBOX_ARGS = $(if $(SANDBOX_DATA),--data $(SANDBOX_DATA),--scale $(SANDBOX_SCALE) --seed $(SANDBOX_SEED)) \
	--state-dir $(SANDBOX_STATE) --port-base $(SANDBOX_PORT_BASE) $(if $(SANDBOX_FAULTS),--faults '$(SANDBOX_FAULTS)')

sandbox: $(INSTALLED)
	$(BIN)/python -m referral_pipeline.sandbox serve $(SANDBOX_ARGS)

run: $(INSTALLED)
	$(BIN)/python -m referral_pipeline run --sandbox $(SANDBOX) $(SANDBOX_ARGS) \
		$(if $(AS_OF),--as-of $(AS_OF)) $(if $(CONFIG),--config $(CONFIG)) --duckdb $(DUCKDB_PATH) --job $(JOB)

dev: $(INSTALLED)
	$(BIN)/python -m referral_pipeline dev --sandbox $(SANDBOX) $(SANDBOX_ARGS) \
		$(if $(CONFIG),--config $(CONFIG)) --duckdb $(DUCKDB_PATH)

bench: $(INSTALLED)
	$(BIN)/python -m bench

clean-data:
	rm -rf $(DUCKDB_PATH) $(DUCKDB_PATH).wal $(SANDBOX_STATE) data/published .sandbox.env
