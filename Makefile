# Strongroom — `make demo` and `make test` do the whole set-up on a fresh Debian machine.
SHELL := /bin/bash
APT_PACKAGES := ffmpeg age chromium fonts-dejavu-core fonts-liberation2 fonts-terminus-otb postgresql tesseract-ocr tesseract-ocr-rus g++ python3-dev openssl openssh-client python3-cryptography libpango-1.0-0 libpangoft2-1.0-0
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
VENV := .venv
PYTEST_ARGS ?=
#: pytest-xdist workers: one per core by default (`make test PYTEST_WORKERS=4` to oversubscribe)
PYTEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
# `make bench ARGS="ingest:file --size 64M"` runs one scenario (benchmarks/run.py --list)
ARGS ?=

.PHONY: setup apt venv demo test lint bench clean

setup: apt venv

apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null; then \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    echo "installing:$$missing"; \
	    $$sudo apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "please install:$$missing" >&2; exit 1; fi; \
	fi

venv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
	  python3 -m pip install -q uv 2>/dev/null || python3 -m pip install -q --user uv || \
	  python3 -m pip install -q --break-system-packages uv
	@$(UV) sync --frozen --quiet
	@# Compiled bytecode, written once: with PYTHONDONTWRITEBYTECODE set (as on our CI) every
	@# command otherwise recompiled ~1 s of sources at start-up. compileall skips what is fresh.
	@$(VENV)/bin/python -m compileall -q -j 0 $(VENV)/lib src >/dev/null || true

demo: setup
	$(VENV)/bin/strongroom demo demo-vault --force

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/python benchmarks/run.py $(ARGS)

clean:
	rm -rf demo-vault demo-vault-media demo-vault-handover .pytest_cache .mypy_cache
