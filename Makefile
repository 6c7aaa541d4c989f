PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8080
VAR ?= var
DEEPCAD_ROOT ?=
export DEEPCAD_ROOT

.PHONY: setup serve demo test lint bench

setup:
	@bash scripts/setup.sh

serve: setup
	@echo "dashboard: http://$(HOST):$(PORT)/"
	$(PY) -m server --host $(HOST) --port $(PORT) --var $(VAR)

demo: setup
	$(PY) scripts/demo.py --var $(VAR)

test: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: setup
	@for b in scripts/bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
