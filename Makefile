# bulkimport: every target creates the environment it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install test lint format demo bench clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

install: $(STAMP)  ## create .venv and install bulkimport with its dev extras

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q bulkimport  # as pip does for a regular install
	touch $(STAMP)

test: $(STAMP)  ## run the whole test suite
	$(BIN)/pytest -q

lint: $(STAMP)  ## ruff check, ruff format --check, mypy --strict, the import layers
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bulkimport
	$(BIN)/lint-imports

format: $(STAMP)  ## apply ruff format and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: $(STAMP)  ## import sample_data/ into the local sandbox and show the results
	$(BIN)/python -m bulkimport.demo

bench: $(STAMP)  ## measure speed and memory, rewrite BENCHMARKS.md
	$(BIN)/python -m compileall -q bulkimport  # byte code of the tree as it is now, as installed
	$(BIN)/python bench/run.py

clean:  ## remove the environment and generated files
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-results.xlsx demo-ledger.sqlite*
