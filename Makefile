# The team's entry points. `make dev` and `make test` are the quick start.
VENV ?= .venv
PY := $(VENV)/bin/python
SETUP_STAMP := $(VENV)/.setup-stamp

.PHONY: setup dev publish test test-suite test-infra lint workflow-lint fmt bench package

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

# The infra tests run in their own process (Pulumi's mocks are process-wide), after the
# rest: beside the drills, their CPU-bound deployments starve the local stack's scaled
# health probes on a 2-core machine. The rest run on parallel workers (the e2e drills mostly
# wait on their simulated network); the tests sharing one local stack stay on one worker
# (xdist groups, tests/e2e/conftest.py). `--keep-going`: a failure in either fails
# `make test`, and both report.
TEST_WORKERS ?= 3

test: lint workflow-lint
	@$(MAKE) --no-print-directory --keep-going test-suite test-infra

test-suite: setup
	$(PY) -m pytest tests --ignore=tests/infra -n $(TEST_WORKERS) --dist loadgroup

test-infra: setup
	$(PY) -m pytest tests/infra

bench: setup
	$(VENV)/bin/uv pip install --quiet --require-hashes --python $(PY) -r requirements/bench.txt
	$(PY) -m bench

package: setup
	$(PY) -m lambda_package --out dist/functions.zip

publish: setup
	$(PY) -m local publish
