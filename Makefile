# The two commands: `make run` (registry on 127.0.0.1:$(PORT) with an embedded S3)
# and `make test` (installs what the tests need, then lint + tests); `make unit` for the
# quick loop.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PORT ?= 5000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := docker-registry skopeo podman buildah umoci busybox-static runc containerd chromium chromium-driver
TOOLS := docker-registry skopeo podman buildah umoci busybox runc containerd ctr chromium chromedriver
#: axe-core, the accessibility engine the page's browser tests run (from npm).
AXE_VERSION := 4.10.2
AXE := tests/.node/node_modules/axe-core/axe.min.js
export PYTHONPATH := layers/ociwrap:functions/registry:dev
UNIT_WORKERS ?= -n 3

.PHONY: run test unit lint system-packages sam-build bench smoke clean mutate

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip

$(VENV)/.run-deps: $(VENV)/bin/python requirements-run.txt layers/ociwrap/requirements.txt layers/ociwrap/requirements-nodeps.txt
	$(VENV)/bin/pip install -q -r requirements-run.txt
	touch $@

$(VENV)/.dev-deps: $(VENV)/.run-deps requirements-dev.txt
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.run-deps
	PORT=$(PORT) $(VENV)/bin/python -m ociwrap_local

system-packages:
	@missing=""; for tool in $(TOOLS); do \
	  command -v $$tool >/dev/null 2>&1 || PATH="$$PATH:/usr/sbin:/sbin" command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi
	@# npm on its own: a machine may have it with its own Node.js, which Debian's npm would replace.
	@command -v npm >/dev/null 2>&1 || { echo "installing Debian's npm"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq npm >/dev/null; }

$(AXE): | system-packages
	npm install --silent --no-audit --no-fund --prefix tests/.node axe-core@$(AXE_VERSION)

lint: $(VENV)/.dev-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The deployed artefact (.aws-sam/build, arm64), the same for this machine's architecture
# (.aws-sam/host) and the Lambda runtime's own packages (.aws-sam/runtime), with the
# Python 3.12 on PATH or under pyenv; the tests check and run them. Needs PyPI, so it runs
# before the tests. Without a Python 3.12 it says so and the tests that need it skip,
# unless CI=true, where it fails.
sam-build: $(VENV)/.dev-deps
	@if PYTHONPATH=dev $(VENV)/bin/python -c "import sys, ociwrap_local.sam as s; sys.exit(s.find_python312() is None)"; then \
	  PYTHONPATH=dev $(VENV)/bin/python -m ociwrap_local.sam all; \
	elif [ "$$CI" = true ]; then \
	  echo "sam-build: no Python 3.12 (python3.12 on PATH or under pyenv), required with CI=true" >&2; exit 1; \
	else \
	  echo "sam-build: no Python 3.12 (python3.12 on PATH or under pyenv): SAM build tests will skip" >&2; \
	fi

# Unit tests in parallel workers, then the integration tests serially (they share session
# fixtures: registries, S3, clients); both always run, and the exit status fails if either does.
test: system-packages $(AXE) lint sam-build
	status=0; \
	$(VENV)/bin/pytest $(UNIT_WORKERS) tests/unit || status=$$?; \
	PATH="$$PATH:/usr/sbin:/sbin" $(VENV)/bin/pytest tests/integration || status=$$?; \
	exit $$status

# The quick loop: unit tests only (no Debian packages, no processes beyond 127.0.0.1), in
# pytest-xdist workers: many tests wait on loopback sockets, so more workers than cores pay.
# UNIT_WORKERS= (empty) runs them in one process. Compiled modules (and pytest's rewritten
# tests) are kept under the venv, outside the tree, so the next run does not compile again.
unit: $(VENV)/.dev-deps
	PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(VENV)/pycache $(VENV)/bin/pytest $(UNIT_WORKERS) tests/unit

# Mutation testing of every module with logic, each against its own unit tests (tests/mutation);
# long, so not part of `make test`. ARGS picks modules, e.g. ARGS="names/reference.py --keep".
mutate: $(VENV)/.dev-deps
	$(VENV)/bin/python tests/mutation/run.py $(ARGS)

# Full pulls direct, proxied and wrapped side by side, plus latencies, upstream requests,
# memory and import time, as Markdown (minutes). ARGS, e.g. ARGS="--size-mib 64
# --repetitions 9 --json bench.json".
bench: $(VENV)/.dev-deps system-packages
	PATH="$$PATH:/usr/sbin:/sbin" PYTHONPATH=$(PYTHONPATH):tests $(VENV)/bin/python tests/benchmark.py $(ARGS)

smoke: $(VENV)/.dev-deps
	@test -n "$(URL)" || { echo "usage: make smoke URL=https://registry.example.com [ARGS='--wrapper acme/wrapper/1']"; exit 2; }
	$(VENV)/bin/python tests/smoke.py $(URL) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .aws-sam
