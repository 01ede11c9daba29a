# Fresh machine, Python 3.11: `make run` runs the quickstart, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint install browser clean

run: install
	$(BIN)/autotune run studies/quickstart.yaml

test: install browser
	$(BIN)/ruff check .
	$(BIN)/pytest

# The fast lane: every test but the end-to-end ones (worker processes, `autotune` in a subprocess, chaos,
# browser, dashboard and gRPC proxy servers, PostgreSQL restarts; marked e2e), in under 2 minutes.
test-fast: install
	$(BIN)/ruff check .
	$(BIN)/pytest -m "not e2e" -n 2   # two processes: the tests wait on PostgreSQL more than on the CPU

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

install: $(VENV)/.installed

# torch 2.13.0 first: the CPU build installs from a local file; a bare `torch`
# requirement would pull the newest CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# System packages some tests need, from Debian when missing (as root): headless Chromium for
# the dashboard's browser test, PgBouncer for tests/test_pgbouncer.py (the tests start their
# own pgbouncer process; the service the package may start is stopped and disabled).
browser:
	@command -v chromium >/dev/null || { \
	  command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] || { \
	    echo "make test needs Chromium: install Debian's 'chromium' package (or run as root)"; \
	    exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	@[ -x /usr/sbin/pgbouncer ] || { \
	  command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] || { \
	    echo "make test needs PgBouncer: install Debian's 'pgbouncer' package (or run as root)"; \
	    exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null; \
	  { systemctl disable --now pgbouncer || service pgbouncer stop; } >/dev/null 2>&1 || true; }

clean:
	rm -rf $(VENV) .autotune *.egg-info
