# Berth — the two commands of the Quickstart are `make run` and `make test`.
# Both work on a fresh Debian machine as root: they install what is missing.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VAR ?= var
APT_PACKAGES := python3-venv docker.io busybox-static redis-server chromium fonts-liberation \
                wrk iproute2 caddy docker-registry redis-sentinel prometheus apache2-utils
# commands that may come from elsewhere (Node.js's own npm): installed from Debian only if absent
APT_COMMANDS := npm
PYTEST_ARGS ?=

.PHONY: run stop status test test-unit test-integration test-browser bench lint deps system-deps venv clean

## run: bring up the whole local system (Redis, three Docker-engine agents, a worker,
## the server with the default universe) in the background and print the store's URL.
run: deps
	$(BIN)/berth dev up --var $(VAR) --serve

## stop: stop everything `make run` started.
stop:
	$(BIN)/berth dev down --var $(VAR)

status:
	$(BIN)/berth dev status --var $(VAR)

## test: install what the tests need, then run every test (unit, integration, browser).
test: deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: deps
	$(BIN)/python -m pytest -m "not integration and not browser" $(PYTEST_ARGS)

test-integration: deps
	$(BIN)/python -m pytest -m "integration" $(PYTEST_ARGS)

test-browser: deps
	$(BIN)/python -m pytest -m "browser" $(PYTEST_ARGS)

## bench: run the benchmarks and print their figures (recorded in bench/RESULTS.md).
bench: deps
	$(BIN)/python -m bench

lint: deps
	$(BIN)/ruff check catalog server worker tests bench
	$(BIN)/mypy

deps: system-deps venv

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	for c in $(APT_COMMANDS); do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
