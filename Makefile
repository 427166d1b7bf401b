# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
TESTENV := $(VENV)/.installed-test
BENCHENV := $(VENV)/.installed-bench
# test peers: Medplum's FHIR router (npm, from the committed lockfile)
MEDPLUM_PEER := tests/peers/medplum/node_modules/.package-lock.json

.PHONY: demo test lint typecheck unit peers bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TESTENV): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(RUNTIME) $@

## demo: the whole station on one machine: kiosk simulator, resident screen, doctor console
## (FAST=1: simulated devices at test speed; FHIR_URL=...: deliver to a FHIR server)
demo: $(RUNTIME) $(ESPEAK)
	-$(BIN)/cabin voice generate
	$(BIN)/cabin station $(if $(FAST),--fast,) $(if $(FHIR_URL),--fhir-url $(FHIR_URL),)

## test: ruff, mypy --strict and the whole pytest suite
test: lint typecheck unit

lint: $(TESTENV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TESTENV)
	$(BIN)/mypy

$(MEDPLUM_PEER): tests/peers/medplum/package-lock.json
	cd tests/peers/medplum && npm ci --no-audit --no-fund --loglevel=error

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
# Installed with apt when we are root; elsewhere the browser tests skip (and fail under CI).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else \
		echo "note: install Debian's chromium for the browser tests"; \
	fi

# espeak-ng speaks the resident's voice prompts offline (generated at set-up, never online)
ESPEAK := /usr/bin/espeak-ng

$(ESPEAK):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng; \
	else \
		echo "note: install espeak-ng for the voice prompts"; \
	fi

peers: $(MEDPLUM_PEER) $(CHROMIUM) $(ESPEAK)

unit: $(TESTENV) $(MEDPLUM_PEER) $(CHROMIUM) $(ESPEAK)
	$(BIN)/python -m pytest

$(BENCHENV): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test,dev,bench]'
	touch $(RUNTIME) $(TESTENV) $@

# benchmark peers: the PeerJS server and the Node load client (npm, committed lockfiles)
BENCH_PEERS := bench/peers/peerjs/node_modules/.package-lock.json \
	bench/peers/loadclient/node_modules/.package-lock.json

bench/peers/%/node_modules/.package-lock.json: bench/peers/%/package-lock.json
	cd bench/peers/$* && npm ci --no-audit --no-fund --loglevel=error

## bench: every benchmark (acquisition, DSP, FHIR, signaling vs PeerJS); paste into BENCHMARKS.md
bench: $(BENCHENV) $(BENCH_PEERS) $(CHROMIUM)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis \
		tests/peers/medplum/node_modules bench/peers/peerjs/node_modules \
		bench/peers/loadclient/node_modules
