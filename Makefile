# Two commands set everything up on a clean clone: `make run` and `make test`.
PYTHON ?= $(shell sh scripts/pick-python.sh)
VENV ?= .venv
PORT ?= 4566
DATA_DIR ?= ./.openkms
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/openkms serve --dev --port $(PORT) --data-dir $(DATA_DIR) $(if $(RATE_LIMITS),--rate-limits)

test: $(STAMP)
	bash scripts/ensure-test-deps.sh
	$(BIN)/python -m pytest -n auto -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run

clean:
	rm -rf $(VENV) build *.egg-info
