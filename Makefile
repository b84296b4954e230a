# The team's entry points. `make dev` and `make test` are the quick start.
VENV ?= .venv
PY := $(VENV)/bin/python
SETUP_STAMP := $(VENV)/.setup-stamp

.PHONY: setup dev test lint fmt bench unit functions-test infra-test e2e-test

setup: $(SETUP_STAMP)

$(SETUP_STAMP): scripts/setup.sh requirements/dev.txt functions/requirements.txt
	./scripts/setup.sh
	@touch $@

dev: setup
	$(PY) -m local

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) -m pytest tests

bench: setup
	$(PY) -m bench
