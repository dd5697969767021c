# mwaa-iac developer entry points. `make setup && make test` on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
UV     := $(shell command -v uv 2>/dev/null)

.PHONY: help setup test check lint typecheck fmt unit tf-test scan schema-lint clean demo demo-down bench bench-major bench-plans bench-startup \
	docs docs-build docs-ref
.DEFAULT_GOAL := help

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(BIN)/mwaa-iac ## Create .venv with mwaa-iac and its dev, terraform and local-stack extras

$(BIN)/mwaa-iac: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,terraform,local]'
	@touch $@

# Lint, unit + integration tests, the offline `terraform test` suite, the IaC scanner.
test: setup lint docs-build schema-lint unit tf-test scan ## Everything CI runs (about 35-42 min on 2 cores: real Airflow end to end)

# The quick loop: lint + the tests that need neither the local stack nor Terraform (under 2 minutes).
check: setup lint ## Lint, types + fast tests (no local stack, no Terraform), under 2 minutes
	$(BIN)/pytest -q -m "not local and not slow and not terraform" tests/unit tests/integration

lint: setup typecheck ## ruff check, ruff format --check, terraform fmt --check, the type check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mwaa-iac tf fmt --check modules environments

# mypy over mwaa_iac/ ([tool.mypy] in pyproject.toml: strict for the pure core and the event contract).
typecheck: setup ## mypy over the package (strict for mwaa_iac/core, events, errors)
	$(BIN)/mypy

# The documentation site (docs/, mkdocs.yml). Its reference pages (the CLI, the --json events, mwaa.yaml)
# are generated from the code at build time by the hook docs/gen_ref.py; --strict fails on a broken
# link or anchor.
docs-build: setup ## Build the documentation site strictly into site/ (broken links fail)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs: setup ## Serve the documentation site at http://127.0.0.1:8000, rebuilt on change
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

docs-ref: setup ## Write the generated reference pages to site-ref/ (to read them without building)
	$(BIN)/python docs/gen_ref.py --out site-ref

# Two workers, each with its own local stack; a test module stays on one worker (its deployment is
# module-scoped). The end-to-end modules mostly wait on Airflow (about 40 % of the 2 cores idle with one
# worker), so two halve the wall time less the contention. Modules go in collection order (the long
# end-to-end ones first), not by their number of tests.
unit: setup ## Every pytest test (unit, integration, local stack, end to end), two workers
	$(BIN)/pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=25

tf-test: setup ## The offline `terraform test` suite of the decision module
	$(BIN)/mwaa-iac tf test modules/blue-green-decision

# The offline AWS-provider schema check lives in the workplace's shared tools, beside the repo.
SCHEMA_LINT ?= ../shared/tools/tf-schema-lint/check_hcl.py
schema-lint: setup ## Check modules/ against the AWS provider schema (offline)
	@if [ -f "$(SCHEMA_LINT)" ]; then $(BIN)/python "$(SCHEMA_LINT)" modules/; \
	else echo "tf-schema-lint not found at $(SCHEMA_LINT); skipped"; fi

# checkov pins packaging versions that clash with pytest's, so it lives in a venv of its own.
CHECKOV_VERSION ?= 3.3.30
SCAN_VENV ?= .venv-scan
$(SCAN_VENV)/bin/checkov:
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install -q 'checkov==$(CHECKOV_VERSION)'

scan: $(SCAN_VENV)/bin/checkov ## checkov over modules/
	$(SCAN_VENV)/bin/checkov --quiet --compact -d modules --framework terraform --config-file .checkov.yaml

# The main job: local stack up, blue 2.9.2 seeded with history, cutover to 2.10.3, summary.
demo: setup ## The main job on the local stack: blue 2.9.2 with history, cutover to 2.10.3
	$(BIN)/mwaa-iac local demo

# Freeze window vs raw copy vs in-place upgrade, 500 DAGs, 3,000 / 100,000 / 1,000,000 task
# instances (bench/out/); one size: `.venv/bin/python bench/freeze_bench.py --sizes 3k`.
BENCH_SIZES ?= 3k,100k,1m
bench: setup ## Freeze window at 3k/100k/1M task instances, without then with MWAA's latency model (bench/out/; about 1.5 h)
	$(BIN)/python bench/freeze_bench.py --sizes $(BENCH_SIZES) --out bench/out/freeze.json
	$(BIN)/python bench/freeze_bench.py --sizes $(BENCH_SIZES) --mwaa-latency \
		--baseline bench/out/freeze.json --out bench/out/freeze-mwaa-latency.json

bench-major: setup ## The 2 → 3 cutover's freeze, single pass beside two passes (bench/out/major.json)
	$(BIN)/python bench/major_bench.py

bench-plans: setup ## The freeze's SQL under EXPLAIN ANALYZE at 3k and 1M task instances (bench/out/query-plans-*.md)
	$(BIN)/python bench/query_plans.py

bench-startup: setup ## Wall time of `mwaa-iac --help` and `versions path` over several runs
	$(BIN)/python bench/startup_bench.py

demo-down: setup ## Stop the demo's local stack and remove its state
	$(BIN)/mwaa-iac local down --remove-state --yes

fmt: setup ## Format Python and Terraform, apply ruff's fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/mwaa-iac tf fmt modules environments

clean: ## Remove the virtualenvs and caches
	rm -rf $(VENV) $(SCAN_VENV) .pytest_cache .ruff_cache .mypy_cache site site-ref
