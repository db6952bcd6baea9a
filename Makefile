# Two commands set everything up on a clean clone: `make run` and `make test`.
# Every dependency comes from the lock files in requirements/ (see scripts/lock.sh).
PYTHON ?= $(shell sh scripts/pick-python.sh)
VENV ?= .venv
PURE_VENV ?= .venv-pure
PORT ?= 4566
DATA_DIR ?= ./.openkms
# --dist loadgroup: tests marked xdist_group (the console's browser tests, which build on each
# other in one browser) stay on one worker; the rest are spread as before.
# The builds `make test` runs: the mypyc-compiled request path (what `make run` serves), against
# the whole suite, then the same sources as plain Python, against the part of the suite that can
# answer differently there (tests/builds.py: unit tests, vectors, the request path over the wire,
# the security tests of the compiled code, a Secrets Manager set). `make test BUILDS=compiled`
# for one; `make test-pure PURE=all` for the whole suite on the plain build.
BUILDS ?= compiled pure
PURE ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHON

.PHONY: install install-pure install-rotation run test test-compiled test-pure lint lock model-drift bench fuzz clean

# The request path is compiled with mypyc (setup.py), which type-checks it against the installed
# dependencies: so first the locked dependencies, then the compiled build in the same
# environment. OPENKMS_PURE_PYTHON=1 installs plain Python instead.
COMPILED := $(shell grep -v '^ *\#' mypyc-modules.txt)

$(STAMP): pyproject.toml setup.py mypyc-modules.txt requirements/dev.txt requirements/bootstrap.txt \
		scripts/install.sh $(COMPILED)
	bash scripts/install.sh $(VENV) compiled
	touch $(STAMP)

install: $(STAMP)

# Always re-installed: it is a copy of the sources, not a link to them (a few seconds).
install-pure:
	bash scripts/install.sh $(PURE_VENV) pure

# PyGreSQL for AWS's PostgreSQL rotation templates (tests/secretsmanager/test_rotation_aws_template.py);
# it builds against libpq, so it is not part of `make install`.
install-rotation: $(STAMP)
	bash scripts/install-rotation.sh .venv

run: $(STAMP)
	$(BIN)/openkms serve --dev --port $(PORT) --data-dir $(DATA_DIR) $(if $(WORKERS),--workers $(WORKERS)) \
		$(if $(RATE_LIMITS),--rate-limits)

test: $(addprefix test-,$(BUILDS))

test-compiled: $(STAMP)
	bash scripts/ensure-test-deps.sh
	@echo "== the whole suite, compiled build ($(VENV)) =="
	OPENKMS_TEST_BUILD=compiled $(BIN)/python -m pytest -n auto --dist loadgroup -q $(PYTEST_ARGS)

test-pure: install-pure
	bash scripts/ensure-test-deps.sh
	@echo "== $(if $(filter all,$(PURE)),the whole suite,the build-sensitive part of the suite (tests/builds.py)), plain-Python build ($(PURE_VENV)) =="
	OPENKMS_TEST_BUILD=pure OPENKMS_TEST_PURE=$(PURE) $(PURE_VENV)/bin/python -m pytest -n auto --dist loadgroup -q \
		-p no:cacheprovider \
		$(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy

# Deliberate: resolves again (newest versions within pyproject's ranges and the constraints).
lock:
	UV=$(if $(wildcard $(BIN)/uv),$(BIN)/uv,) bash scripts/lock.sh

# What a newer botocore changes in the KMS, IAM and STS models (not part of `make test`).
model-drift: $(STAMP)
	$(BIN)/python scripts/model_drift.py $(if $(BOTOCORE),--botocore $(BOTOCORE))

bench: $(STAMP)
	$(BIN)/python benchmarks/run

# The model-driven fuzzer (tests/security/fuzzer.py) against a server of its own: seeded,
# prints its counts and findings, exits 1 on a finding. FUZZ_REQUESTS / FUZZ_SEED to change.
FUZZ_REQUESTS ?= 100000
FUZZ_SEED ?= 1
fuzz: $(STAMP)
	$(BIN)/python -m tests.security.fuzzer --requests $(FUZZ_REQUESTS) --seed $(FUZZ_SEED)

clean:
	rm -rf $(VENV) $(PURE_VENV) build *.egg-info src/openkms/_compiled.json
	find src -name '*.so' -delete
