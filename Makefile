# The front door.  Every target works on a fresh machine with Python 3.11+ and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Three dependency sets, each with its own hash-checked lock (pyproject.toml says what is in each):
# runtime (the image), local (make up, the embedded servers), dev (tests, lint, tools).
LOCKS := requirements/runtime.lock requirements/local.lock requirements/dev.lock
PYTEST_ARGS ?=
# make image IMAGE=<registry>/<repository>:<tag> [OVERLAY=prod]
IMAGE ?=
OVERLAY ?= prod
DOCKER ?= docker
# The deploy/k8s that make k8s-validate checks and make image edits.
K8S_ROOT ?= deploy/k8s
# make lock: the uv that resolves the locks (installed into a throwaway virtualenv).
UV_VERSION ?= 0.13.9
LOCK_ARGS ?=

.DEFAULT_GOAL := install
.PHONY: help install up test test-only test-fast lint fmt bench wrk k8s-validate image lock migrate clean

help:
	@echo "make               install: .venv with the runtime, local and dev sets (hash-checked locks)"
	@echo "make up            run the whole platform locally (embedded NATS and Postgres if unset)"
	@echo "make test          lint, then every test against real NATS JetStream and Postgres"
	@echo "make test-fast     unit and in-process integration tests, without the ones marked slow"
	@echo "make lint          ruff check, ruff format --check, mypy --strict"
	@echo "make bench         benchmarks (ingest, execution, memory, latency)"
	@echo "make k8s-validate  render the Kubernetes overlays with kustomize and validate them offline"
	@echo "make image IMAGE=<registry>/<repo>:<tag>  build and push the image, point overlays/\$$OVERLAY at it"
	@echo "make lock          re-resolve requirements/*.lock from pyproject.toml (needs PyPI)"
	@echo "make clean         stop nothing, wipe .local/ (embedded data) and caches"

$(STAMP): $(LOCKS) pyproject.toml
	@$(PYTHON) deploy/local/install.py $(VENV)
	@touch $(STAMP)

install: $(STAMP)
	@$(PYTHON) deploy/local/install.py --next

up: $(STAMP)
	$(PY) -m deploy.local

migrate: $(STAMP)
	$(PY) -m libs.common.db.migrate

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs services deploy tests ipaas_cli

test: lint test-only

# pytest exits 5 when it collected nothing: that is a failure here, never a silent pass.
NOTHING_COLLECTED = rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests were collected: failing" >&2; exit 1; fi; exit $$rc

test-only: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS); $(NOTHING_COLLECTED)

# The inner loop: tests/unit and tests/integration without the slow ones (anything that starts a
# service as a process is marked slow; tests/unit/test_fast_split.py holds that rule), spread over
# one worker process per core (pytest-xdist; PYTEST_ARGS="-n 0" runs them in this process).
test-fast: $(STAMP)
	$(PY) -m pytest tests/unit tests/integration -m "not slow" -n auto $(PYTEST_ARGS); $(NOTHING_COLLECTED)

bench: $(STAMP) wrk
	$(PY) -m pytest tests/bench -p no:cacheprovider -o addopts="" -s --timeout=1800 $(PYTEST_ARGS)

# The HTTP load generator of the benchmarks, from the OS packages (Debian/Ubuntu: wrk).
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "[bench] installing wrk (apt-get)"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk; \
	  else echo "[bench] wrk is missing: install it with your package manager (brew install wrk, apt-get install wrk)" >&2; exit 1; fi; }

k8s-validate: $(STAMP)
	$(PY) -m deploy.k8s.validate --root $(K8S_ROOT)

# Build the one image (runtime set only), push it, and pin the overlay to the pushed digest.
image: $(STAMP)
	@test -n "$(IMAGE)" || { echo "usage: make image IMAGE=<registry>/<repository>:<tag> [OVERLAY=prod]" >&2; exit 2; }
	$(DOCKER) build -f deploy/k8s/Dockerfile -t "$(IMAGE)" .
	$(DOCKER) push "$(IMAGE)"
	$(PY) -m deploy.k8s.image --root $(K8S_ROOT) "$(OVERLAY)" \
	  "$$($(DOCKER) image inspect --format '{{index .RepoDigests 0}}' "$(IMAGE)")"

UV_COMPILE = "$$tmp/bin/uv" pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" --quiet $(LOCK_ARGS)

# dev first (it holds every package); local and runtime take dev's pins, so the sets agree.
lock:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -m venv "$$tmp" && "$$tmp/bin/pip" install --quiet --disable-pip-version-check "uv==$(UV_VERSION)" && \
	$(UV_COMPILE) --extra dev -o requirements/dev.lock && \
	$(UV_COMPILE) --extra local -c requirements/dev.lock -o requirements/local.lock && \
	$(UV_COMPILE) -c requirements/dev.lock -o requirements/runtime.lock && \
	echo "requirements/*.lock updated: commit them with pyproject.toml"

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf .local .pytest_cache .mypy_cache .ruff_cache
