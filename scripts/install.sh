#!/usr/bin/env bash
# Creates (or brings up to date) a virtual environment with exactly the locked dependencies and
# openkms itself. Used by the Makefile; nothing here resolves a version (see scripts/lock.sh).
#
#   scripts/install.sh VENV compiled   editable install, the request path compiled with mypyc
#                                      (plain Python, with one warning, where no C compiler or
#                                      Python headers exist)
#   scripts/install.sh VENV pure       a regular (non-editable) plain-Python install: the same
#                                      sources without the extensions that sit beside them in
#                                      the tree, so the suite can run against both builds
#
# Why uv: from the same lock it installs the ~50 packages in about 5 s where pip takes 20-25 s,
# and `uv pip sync` also removes what the lock no longer lists, so an old .venv ends up equal to
# a new one. uv itself is installed by pip from requirements/bootstrap.txt, hashes checked.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:?usage: install.sh VENV compiled|pure}
build=${2:?usage: install.sh VENV compiled|pure}
python=${PYTHON:-$(sh scripts/pick-python.sh)}

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
# pip only installs uv (hash-checked); uv installs everything else from the lock.
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --require-hashes \
    -r requirements/bootstrap.txt
"$venv/bin/uv" pip sync -q --python "$venv/bin/python" --require-hashes \
    requirements/dev.txt requirements/bootstrap.txt

have_compiler() {
  command -v "${CC:-cc}" >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || return 1
  "$venv/bin/python" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
}

# openkms itself, built by pip with the locked setuptools and mypy already in the venv
# (--no-build-isolation: nothing is fetched for the build).
pip_install=("$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps
             --no-build-isolation)
case "$build" in
  compiled)
    if [ "${OPENKMS_PURE_PYTHON:-}" = 1 ]; then
      OPENKMS_PURE_PYTHON=1 "${pip_install[@]}" -e .
    elif have_compiler; then
      OPENKMS_REQUIRE_COMPILED=1 "${pip_install[@]}" -e .
    else
      echo "WARNING: openkms: no C compiler or Python headers (Python.h) here, so the request" \
           "path is installed as plain Python (about 40 % slower); install gcc and" \
           "python3-dev to compile it" >&2
      OPENKMS_PURE_PYTHON=1 "${pip_install[@]}" -e .
    fi
    ;;
  pure)
    # Not editable: an editable install would import the compiled extensions that sit in the
    # tree (setup.py leaves those alone when it builds a wheel).
    OPENKMS_PURE_PYTHON=1 "${pip_install[@]}" --force-reinstall .
    ;;
  *)
    echo "install.sh: unknown build '$build' (compiled or pure)" >&2
    exit 2
    ;;
esac
