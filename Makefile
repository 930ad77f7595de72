# The front door.  Every target works on a fresh machine with Python 3.11+ and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install up test test-only lint fmt bench k8s-validate migrate clean

help:
	@echo "make up            run the whole platform locally (embedded NATS and Postgres if unset)"
	@echo "make test          lint, then every test against real NATS JetStream and Postgres"
	@echo "make lint          ruff + mypy --strict"
	@echo "make bench         benchmarks (ingest, execution, memory, latency)"
	@echo "make k8s-validate  validate the Kubernetes manifests offline"
	@echo "make clean         stop nothing, wipe .local/ (embedded data) and caches"

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(PY) -m deploy.local

migrate: $(STAMP)
	$(PY) -m libs.common.db.migrate

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy libs services deploy tests

test: lint test-only

# pytest exits 5 when it collected nothing: that is a failure here, never a silent pass.
test-only: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests were collected: failing" >&2; exit 1; fi; exit $$rc

bench: $(STAMP)
	$(PY) -m pytest tests/bench -p no:cacheprovider -o addopts="" -s --timeout=900 $(PYTEST_ARGS)

k8s-validate: $(STAMP)
	$(PY) -m deploy.k8s.validate

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf .local .pytest_cache .mypy_cache .ruff_cache
