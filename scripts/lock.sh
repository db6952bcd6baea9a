#!/usr/bin/env bash
# `make lock`: resolves every dependency again, deliberately, and writes the lock files in
# requirements/ (versions and SHA-256 hashes of every distribution, for every platform and
# Python >= 3.11). Nothing else ever resolves: `make install`, `make run` and `make test`
# install exactly these files. Review the diff, run `make test`, commit.
#
#   requirements/bootstrap.txt  uv, the installer (installed with pip, hashes checked)
#   requirements/dev.txt        runtime + development dependencies (what `make` installs)
#   requirements/runtime.txt    runtime only, the same versions (what a deployment installs)
#   requirements/build.txt      mypy and setuptools, to compile the request path on a node
#   requirements/esdk.txt       the AWS Encryption SDK's own venv for the interop tests
#   requirements/bench.txt      moto's server and the benchmark tools (benchmarks/.venv-bench)
#   requirements/rotation.txt   PyGreSQL, for AWS's PostgreSQL rotation templates (make install-rotation)
#
# Inputs: pyproject.toml's ranges, requirements/constraints.txt (held versions), *.in files.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-}
if [ -z "$uv" ]; then
  if [ -x .venv/bin/uv ]; then
    uv=.venv/bin/uv
  else
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m venv "$tmp/venv"
    "$tmp/venv/bin/python" -m pip install -q uv
    uv="$tmp/venv/bin/uv"
  fi
fi
common=(--universal --generate-hashes --python-version 3.11 --quiet --upgrade
        --custom-compile-command "make lock")
"$uv" pip compile "${common[@]}" requirements/bootstrap.in -o requirements/bootstrap.txt
"$uv" pip compile "${common[@]}" pyproject.toml --extra dev \
    -c requirements/constraints.txt -o requirements/dev.txt
# The runtime lock takes its versions from the development lock, so a deployment runs what the
# tests ran.
"$uv" pip compile "${common[@]}" pyproject.toml -c requirements/dev.txt \
    -o requirements/runtime.txt
"$uv" pip compile "${common[@]}" requirements/build.in -c requirements/dev.txt \
    -o requirements/build.txt
"$uv" pip compile "${common[@]}" requirements/rotation.in -c requirements/dev.txt \
    -o requirements/rotation.txt
"$uv" pip compile "${common[@]}" requirements/esdk.in -o requirements/esdk.txt
"$uv" pip compile "${common[@]}" requirements/bench.in -o requirements/bench.txt
echo "lock: requirements/*.txt written; review the diff and run make test" >&2
