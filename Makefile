# The two entry points of the README. Both install everything they need into .venv first.
VENV ?= .venv

.PHONY: demo test lint install install-dev

install:
	bash scripts/install.sh

install-dev:
	bash scripts/install.sh --dev

demo: install
	$(VENV)/bin/atlas demo

test: install-dev
	bash scripts/browser-deps.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest

lint: install-dev
	$(VENV)/bin/ruff check .
