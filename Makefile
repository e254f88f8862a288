# Comity: the README's two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit fuzz gen gen-check bench bench-audit bench-indicators bench-pdq bench-tags chaos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# stix2-validator (a test dependency) pulls in jsonschema's format extras; one of them,
	# rfc3987-syntax, builds a grammar whenever jsonschema is imported, a second for every
	# node process the tests start. No Comity schema uses the URI formats it checks.
	$(BIN)/pip uninstall --quiet --yes rfc3987-syntax
	touch $(STAMP)

## demo: start three agencies' nodes on loopback and walk a preservation request through them
demo: $(STAMP)
	$(BIN)/comity demo

## test: install, check generated code, lint, type-check, run every test
test: $(STAMP) gen-check lint typecheck unit

## fuzz: run every parser's fuzz target for FUZZ_RUNS inputs (FUZZ_TIME seconds at most, 0 =
## no limit); prints inputs run and crashes per target, crashing inputs go to fuzz-artifacts/
FUZZ_RUNS ?= 1000000
FUZZ_TIME ?= 0
fuzz: $(STAMP)
	nice $(BIN)/python -m tests.fuzz.campaign --runs $(FUZZ_RUNS) --max-time $(FUZZ_TIME)

gen: $(STAMP)
	ops/gen_proto.sh

gen-check: $(STAMP)
	ops/gen_proto.sh --check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy node tests ops

unit: $(STAMP)
	$(BIN)/pytest

## bench: node-to-node exchange beside a bare grpc.aio echo baseline, then PDQ matching and
## tag lookups
bench: $(STAMP)
	$(BIN)/python -m ops.bench.exchange
	$(BIN)/python -m ops.bench.pdq
	$(BIN)/python -m ops.bench.tags

## bench-audit: appends, proofs at a million leaves, a full auditor verification
bench-audit: $(STAMP)
	$(BIN)/python -m ops.bench.audit

## bench-indicators: private overlap counting of two 100,000-item sets beside a hash join
bench-indicators: $(STAMP)
	$(BIN)/python -m ops.bench.indicators

## bench-pdq: a million stored PDQ hashes, the node's index beside a plain Python scan
bench-pdq: $(STAMP)
	$(BIN)/python -m ops.bench.pdq

## bench-tags: exact lookups among 10,000,000 stored group tags beside a Python set
bench-tags: $(STAMP)
	$(BIN)/python -m ops.bench.tags

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
