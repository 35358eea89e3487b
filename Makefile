# The two commands of the README:
#   make demo   set up this machine, then run the demo on the embedded defaults
#   make test   set up this machine, then run the whole test suite
# Setup is idempotent: a second run installs nothing new.

VENV ?= .venv
INTEROP ?= .venv-interop
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test lint check bench clean

setup: $(VENV)/.installed $(INTEROP)/.installed
	@bash .ci/install-system-deps
	@bash .ci/install-keycloak
	@# the independent verifier of the integrity tests (Go's golang.org/x/mod/sumdb)
	cd tests/provenance/goverify && GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# A partner's client library (ngsildclient) in its own environment: it pins old httpx and
# aiofiles, which must never constrain the adapter's dependencies.
$(INTEROP)/.installed:
	$(PYTHON) -m venv $(INTEROP)
	$(INTEROP)/bin/pip install --quiet --upgrade pip
	$(INTEROP)/bin/pip install --quiet ngsildclient==0.5.2
	touch $@

demo: setup
	$(BIN)/ngsild-adapter demo

test: setup lint
	$(BIN)/pytest

# the lint and type-check gates (part of `make test`, so CI runs them)
lint: setup
	$(BIN)/ruff check adapter tests benchmarks
	$(BIN)/ruff format --check adapter tests benchmarks
	$(BIN)/mypy

check: setup
	$(BIN)/ngsild-adapter check

bench: setup
	$(BIN)/python benchmarks/pipeline_throughput.py

clean:
	rm -rf $(VENV) $(INTEROP) var build *.egg-info
