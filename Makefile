# Velo — two commands: `make test` and `make demo`. Each sets up .venv from scratch when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lint typecheck pytest bench bench-peers clean chromium

# Reinstall only when the project's metadata changes: a second `make test` starts at once.
$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check setup.py grammar server cli tests demo bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/python -m demo.run

bench: $(STAMP)
	$(BIN)/python -m bench.run

# Velo beside Bytewax, Quix Streams and Pathway (each installed into bench/.venvs/ on first use) and the
# aiokafka floor; writes bench/results/peers.md and peers.json.
bench-peers: $(STAMP)
	$(BIN)/python -m bench.peers

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The web console's browser tests drive Debian's chromium (tests/e2e/test_console.py); installed when
# missing (as root, like CI). Playwright's own browser download is never used.
chromium:
	sh tests/e2e/ensure_chromium.sh
