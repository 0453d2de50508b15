# flashmall: developer tasks. Run `make` for the list.
#
# On a fresh Debian machine as root, `make test` or `make demo` installs what is missing
# (python3-venv, PostgreSQL, Redis, RabbitMQ) and starts the services that are not running.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_ARGS ?=
TESTS ?= tests

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install install-bench services services-status services-down migrate \
	test test-tools soak faults demo shop bench bench-faults bench-shards locust recs-eval lint clean

help:
	@echo "flashmall: make TARGET"
	@echo "  install          create .venv and install the mall with its test extras"
	@echo "  services         start PostgreSQL, Redis and RabbitMQ where they are not running"
	@echo "  services-status  show whether each service is reachable"
	@echo "  services-down    stop the services that 'make services' started (only those)"
	@echo "  migrate          apply the database migrations"
	@echo "  test             run the tests, soak tests excluded"
	@echo "  soak             run the soak tests only"
	@echo "  demo             run the mall here and send it a burst of orders (DEMO_ARGS=...)"
	@echo "  shop             the demo, then serve the storefront and back office until Ctrl-C"
	@echo "  bench            run the peak-throughput harness (BENCH_ARGS=...), append to bench/RESULTS.md"
	@echo "  locust           a bounded promotion-day run in Locust (LOCUST_ARGS=...)"
	@echo "  faults           the fault-injection scenarios only (part of test)"
	@echo "  bench-shards     one hot sale in K stock shards on a local Redis Cluster (SHARDS_ARGS=...)"
	@echo "  bench-faults     the fault scenarios with larger bursts, table to bench/RESULTS.md (FAULTS_ARGS=...)"
	@echo "  recs-eval        hit rate of the recommendations on a generated order history (RECS_ARGS=...)"
	@echo "  lint             ruff check"
	@echo "  clean            remove run files and caches (keeps .venv)"
	@echo "Variables: PYTEST_ARGS='-k name -x' (test, soak), TESTS=tests/unit (test, soak)"

# --- Python environment ------------------------------------------------------------------

# apt-get install $(1) as root, or explain what to install.
define apt_install
if [ "$$(id -u)" -ne 0 ]; then \
	echo "make: missing $(1); install it first: sudo apt-get install $(1)" >&2; exit 1; \
fi; \
command -v apt-get >/dev/null 2>&1 || { echo "make: install $(1) first" >&2; exit 1; }; \
echo "make: apt-get install $(1)"; \
export DEBIAN_FRONTEND=noninteractive; \
apt-get update -q && apt-get install -y -q --no-install-recommends $(1)
endef

# The venv counts as made once it has pip (a venv made without ensurepip has none).
$(PIP):
	@if ! command -v $(PYTHON) >/dev/null 2>&1; then \
		$(call apt_install,python3 python3-venv python3-dev gcc ca-certificates); \
	fi
	@echo "make: creating $(VENV)"
	@if ! $(PYTHON) -m venv $(VENV); then \
		echo "make: '$(PYTHON) -m venv' failed; installing python3-venv" >&2; \
		$(call apt_install,python3-venv python3-dev gcc ca-certificates); \
		$(PYTHON) -m venv $(VENV); \
	fi
	@test -x $(PIP) || { echo "make: $(VENV) has no pip; remove $(VENV) and retry" >&2; exit 1; }

$(VENV)/.installed: pyproject.toml | $(PIP)
	$(PIP) install -e '.[test]'
	@touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed
	$(PIP) install -e '.[test,bench]'
	@touch $@

install: $(VENV)/.installed

install-bench: $(VENV)/.installed-bench

# --- Services ----------------------------------------------------------------------------

services:
	@bash scripts/services.sh up

services-status:
	@bash scripts/services.sh status

services-down:
	@bash scripts/services.sh down

migrate: install services
	$(VENV)/bin/mall migrate

# --- Running -----------------------------------------------------------------------------

# Prometheus runs in the dashboard test, Chromium in the browser tests (Debian's packages;
# Playwright drives the system browser and downloads none).
test-tools:
	@command -v chromium >/dev/null 2>&1 || { $(call apt_install,chromium fonts-wqy-microhei); }
	@command -v prometheus >/dev/null 2>&1 || { $(call apt_install,prometheus); }
	@command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || { $(call apt_install,docker-compose); }

test: install services test-tools
	$(PY) -m pytest -q -m "not soak" $(PYTEST_ARGS) $(TESTS)

soak: install services
	$(PY) -m pytest -q -m soak $(PYTEST_ARGS) $(TESTS)

demo: install
	@bash scripts/demo.sh

# The demo, then the storefront and the back office to browse until Ctrl-C.
shop: install
	@DEMO_STAY=1 bash scripts/demo.sh

# Peak-throughput harness (loopback only, bounded): BENCH_ARGS="--seconds 10 --workers 1,2".
bench: install-bench services
	@command -v wrk >/dev/null 2>&1 || { $(call apt_install,wrk); }
	$(PY) -m bench.peak $(BENCH_ARGS)

# A promotion day in Locust (browsing, polling, the flash-sale start, cart, checkout, payment),
# headless and bounded: LOCUST_ARGS="--users 50 --seconds 30".
locust: install-bench services
	$(PY) -m bench.locust_run $(LOCUST_ARGS)

# The fault scenarios only (private Redis, PostgreSQL and RabbitMQ on free loopback ports).
faults: install services
	$(PY) -m pytest -q -m "not soak" $(PYTEST_ARGS) tests/faults

# One hot sale split into K stock shards on a local three-master Redis Cluster:
# SHARDS_ARGS="--shards 1,2,4 --seconds 8 --procs 2 --concurrency 64".
bench-shards: install
	$(PY) -m bench.shards $(SHARDS_ARGS)

# The fault scenarios with larger bursts, as a table appended to bench/RESULTS.md.
bench-faults: install services
	$(PY) -m bench.faults $(FAULTS_ARGS)

# Hit rate of the recommendations on a generated order history (throwaway database and namespace):
# RECS_ARGS="--users 2000 --orders 20000 --seed 11".
recs-eval: install services
	$(PY) -m bench.recs_eval $(RECS_ARGS)

lint:
	@if [ -x $(VENV)/bin/ruff ]; then $(VENV)/bin/ruff check .; \
	elif command -v ruff >/dev/null 2>&1; then ruff check .; \
	else echo "make: ruff is not installed; add it with: $(PIP) install ruff" >&2; exit 1; fi

# Keeps .venv, and keeps the record of services still running that `make services` started
# (so `make services-down` can still stop them).
clean:
	@if [ -s .run/started-services ]; then \
		find .run -mindepth 1 ! -name started-services ! -name services.lock -exec rm -rf {} +; \
		echo "make: kept .run/started-services; 'make services-down' stops: $$(cut -d' ' -f1 .run/started-services | paste -sd' ')"; \
	else \
		rm -rf .run; \
	fi
	rm -rf .pytest_cache .ruff_cache .mypy_cache
	find . -path ./.venv -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
