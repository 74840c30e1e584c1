# The two entry points of the README. Both install everything they need into $(VENV) first.
VENV ?= .venv
# Extra arguments for `atlas demo` (e.g. DEMO_ARGS="--days 3" for the short run of .ci/run).
DEMO_ARGS ?=

.PHONY: demo test lint install install-dev

install:
	ATLAS_VENV=$(VENV) bash scripts/install.sh

install-dev:
	ATLAS_VENV=$(VENV) bash scripts/install.sh --dev

demo: install
	$(VENV)/bin/atlas demo $(DEMO_ARGS)

test: install-dev
	bash scripts/browser-deps.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
