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
SYSTEM_PACKAGES := nginx-light redis-server chromium systemd openssl curl

.PHONY: serve test lint typecheck pytest jstest venv deps-serve deps-test deps-bench system-deps bench clean clients

serve: deps-serve
	$(PY) app.py $(ARGS)

test: deps-test clients lint typecheck pytest jstest

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
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: $(PY)

deps-serve: venv
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q -e '.[local]'

deps-test: venv system-deps
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q -e '.[test,test-openai,lint,local,metrics,redis]'

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
