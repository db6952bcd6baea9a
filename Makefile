# Two commands set everything up on a clean clone: `make run` and `make test`.
PYTHON ?= $(shell sh scripts/pick-python.sh)
VENV ?= .venv
PORT ?= 4566
DATA_DIR ?= ./.openkms
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench fuzz clean

# The request path is compiled with mypyc (setup.py), which type-checks it against the installed
# dependencies: so first the package and its dependencies as plain Python, then the compiled
# build in the same environment. OPENKMS_PURE_PYTHON=1 skips the compilation.
COMPILED := $(shell grep -v '^ *\#' mypyc-modules.txt)

$(STAMP): pyproject.toml setup.py mypyc-modules.txt $(COMPILED)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	OPENKMS_PURE_PYTHON=1 $(BIN)/python -m pip install -q -e '.[dev]'
	OPENKMS_REQUIRE_COMPILED=1 $(BIN)/python -m pip install -q --no-build-isolation --no-deps -e .
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

# The model-driven fuzzer (tests/security/fuzzer.py) against a server of its own: seeded,
# prints its counts and findings, exits 1 on a finding. FUZZ_REQUESTS / FUZZ_SEED to change.
FUZZ_REQUESTS ?= 100000
FUZZ_SEED ?= 1
fuzz: $(STAMP)
	$(BIN)/python -m tests.security.fuzzer --requests $(FUZZ_REQUESTS) --seed $(FUZZ_SEED)

clean:
	rm -rf $(VENV) build *.egg-info src/openkms/_compiled.json
	find src -name '*.so' -delete
