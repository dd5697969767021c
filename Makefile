# mwaa-iac developer entry points. `make setup && make test` on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
UV     := $(shell command -v uv 2>/dev/null)

.PHONY: setup test lint fmt unit tf-test scan schema-lint clean demo demo-down bench

setup: $(BIN)/mwaa-iac

$(BIN)/mwaa-iac: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,terraform]'
	@touch $@

# Lint, unit + integration tests, the offline `terraform test` suite, the IaC scanner.
test: setup lint schema-lint unit tf-test scan

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mwaa-iac tf fmt --check modules environments

unit: setup
	$(BIN)/pytest -q

tf-test: setup
	$(BIN)/mwaa-iac tf test modules/blue-green-decision

# The offline AWS-provider schema check lives in the workplace's shared tools, beside the repo.
SCHEMA_LINT ?= ../shared/tools/tf-schema-lint/check_hcl.py
schema-lint: setup
	@if [ -f "$(SCHEMA_LINT)" ]; then $(BIN)/python "$(SCHEMA_LINT)" modules/; \
	else echo "tf-schema-lint not found at $(SCHEMA_LINT); skipped"; fi

# checkov pins packaging versions that clash with pytest's, so it lives in a venv of its own.
CHECKOV_VERSION ?= 3.3.30
SCAN_VENV ?= .venv-scan
$(SCAN_VENV)/bin/checkov:
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install -q 'checkov==$(CHECKOV_VERSION)'

scan: $(SCAN_VENV)/bin/checkov
	$(SCAN_VENV)/bin/checkov --quiet --compact -d modules --framework terraform --config-file .checkov.yaml

# The main job: local stack up, blue 2.9.2 seeded with history, cutover to 2.10.3, summary.
demo: setup
	$(BIN)/mwaa-iac local demo

# Freeze window vs raw copy vs in-place upgrade, at 3,000 and 105,000 task instances (bench/out/).
bench: setup
	$(BIN)/python bench/freeze_bench.py

demo-down: setup
	$(BIN)/mwaa-iac local down --remove-state --yes

fmt: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/mwaa-iac tf fmt modules environments

clean:
	rm -rf $(VENV) $(SCAN_VENV) .pytest_cache .ruff_cache
