# The team's entry points. `make dev` and `make test` are the quick start.
VENV ?= .venv
PY := $(VENV)/bin/python
SETUP_STAMP := $(VENV)/.setup-stamp

.PHONY: setup dev publish test lint workflow-lint fmt bench package

setup: $(SETUP_STAMP)

$(SETUP_STAMP): scripts/setup.sh requirements/installer.txt requirements/dev.txt functions/requirements.txt
	./scripts/setup.sh
	@touch $@

dev: setup
	$(PY) -m local $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

workflow-lint: setup
	$(VENV)/bin/zizmor --offline --no-progress .github/
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-actions .github/actions/*/action.yml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml

# Infra tests run in their own process: Pulumi's mocks are process-wide.
test: lint workflow-lint
	$(PY) -m pytest tests --ignore=tests/infra
	$(PY) -m pytest tests/infra

bench: setup
	$(VENV)/bin/uv pip install --quiet --require-hashes --python $(PY) -r requirements/bench.txt
	$(PY) -m bench

package: setup
	$(PY) -m lambda_package --out dist/functions.zip

publish: setup
	$(PY) -m local publish
