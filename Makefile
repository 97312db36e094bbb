# `make demo` and `make test` set up .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test browser lint format benchmarks clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/segattn demo

# two processes (pytest-xdist), a test file each at a time: much of the suite waits on the
# processes and servers it starts
test: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 --dist loadfile

# Chromium for the test of `segattn serve`'s page (Playwright drives it; it downloads no browser).
# Installed with apt where this user may; elsewhere that one test skips and says why.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "no Chromium installed: the page test will skip"

# docs/benchmarks.md from the records in docs/results/*.jsonl (no measuring)
benchmarks: $(STAMP)
	$(BIN)/python tools/benchmark.py render

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf runs .pytest_cache .ruff_cache
