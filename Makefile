# The two commands of the README: `make demo` (run tilfreds on the embedded default; PORT=8012
# and HOST=... choose where it listens) and `make test` (the whole suite, SQLite and
# PostgreSQL). Both set up what they need first.
PYTHON ?= python3
HOST   ?= 127.0.0.1
PORT   ?= 8000
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install browser peers bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tilfreds demo --host $(HOST) --port $(PORT)

browser:
	@bash scripts/ensure-chromium
	@bash scripts/ensure-axe

# the real SMS peers of tests/e2e/test_sms_*.py: Jasmin in .peers/jasmin, Debian's Kannel
peers:
	@bash scripts/ensure-jasmin
	@bash scripts/ensure-kannel

test: $(STAMP) browser peers
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .peers var .pytest_cache .mypy_cache .ruff_cache
