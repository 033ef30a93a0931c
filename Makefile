# make run   — the default study (config/config.yaml) and its HTML report
# make test  — the test suite and the linters
# make bench — the benchmarks, the default study included (benchmarks/run.py; results in docs/benchmarks.md)
# make cost  — what a study costs per rule before it runs (CONFIG ?= config/paper.yaml, DEVICE ?= a100)
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
# The set-up is redone only when the pins change: the stamp's name carries their hash.
HASH := $(shell cat requirements.txt pyproject.toml | sha1sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(HASH)
CORES ?= all
CONFIG ?= config/paper.yaml
DEVICE ?= a100

.PHONY: setup run report test lint bench cost clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

run: setup
	$(BIN)/snakemake --cores $(CORES)
	$(MAKE) report

report: setup
	$(BIN)/snakemake --report results/report.html

test: setup
	$(BIN)/pytest -q
	$(MAKE) lint

lint: setup
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint --workflow-profile none

bench: setup
	$(BIN)/python benchmarks/run.py --with-study

cost: setup
	$(BIN)/python -m toroids.cost --configfile $(CONFIG) --device $(DEVICE)

clean:
	rm -rf results/default .snakemake
