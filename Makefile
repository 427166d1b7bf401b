# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
TESTENV := $(VENV)/.installed-test
BENCHENV := $(VENV)/.installed-bench

.PHONY: demo test lint typecheck unit bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TESTENV): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(RUNTIME) $@

## demo: every simulated sensor on its own pty, read by the real serial code, shown live
demo: $(RUNTIME)
	$(BIN)/cabin demo

## test: ruff, mypy --strict and the whole pytest suite
test: lint typecheck unit

lint: $(TESTENV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TESTENV)
	$(BIN)/mypy

unit: $(TESTENV)
	$(BIN)/python -m pytest

$(BENCHENV): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test,dev,bench]'
	touch $(RUNTIME) $(TESTENV) $@

## bench: every benchmark (acquisition, DSP against HeartPy and NeuroKit2); paste into BENCHMARKS.md
bench: $(BENCHENV)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
