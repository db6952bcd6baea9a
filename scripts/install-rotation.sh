#!/usr/bin/env bash
# `make install-rotation`: adds the `rotation` extra (PyGreSQL, which AWS's PostgreSQL rotation
# templates import) to an installed .venv, from its own hashed lock. PyGreSQL has no Linux wheel:
# it builds against libpq, whose pg_config comes with Debian's libpq-dev (installed here when
# missing and we are root). Kept out of `make install` so that set-up never needs libpq-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv}
if [ ! -x "$venv/bin/uv" ]; then
  echo "install-rotation: $venv is not installed; run make install first" >&2
  exit 2
fi
if ! command -v pg_config >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-rotation: installing libpq-dev (pg_config) to build PyGreSQL" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libpq-dev \
      >/dev/null
  else
    echo "install-rotation: pg_config not found: install libpq-dev (Debian) or libpq-devel" >&2
    exit 2
  fi
fi
"$venv/bin/uv" pip install -q --python "$venv/bin/python" --require-hashes \
    -r requirements/rotation.txt
