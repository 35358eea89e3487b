# The two commands of the README:
#   make demo   set up this machine, then run the demo on the embedded defaults
#   make test   set up this machine, then run the whole test suite
# Setup is idempotent: a second run installs nothing new.

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test check bench clean

setup: $(VENV)/.installed
	@bash .ci/install-system-deps

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: setup
	$(BIN)/ngsild-adapter demo

test: setup
	$(BIN)/pytest

check: setup
	$(BIN)/ngsild-adapter check

bench: setup
	$(BIN)/python benchmarks/pipeline_throughput.py

clean:
	rm -rf $(VENV) var build *.egg-info
