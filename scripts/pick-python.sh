#!/bin/sh
# Prints the interpreter `make` builds .venv with (override with `make PYTHON=...`).
#
# The distribution's CPython comes first when it is 3.11 or newer and can make a venv: Debian
# and Ubuntu build it with profile-guided optimisation and LTO, and link libpython statically.
# On the development machine it runs openkms's request path about 20 % faster than a default
# pyenv build (--enable-shared, no PGO); see docs/benchmarks.md. Otherwise: python3 on PATH.
for candidate in /usr/bin/python3 /usr/local/bin/python3; do
    if [ -x "$candidate" ] \
        && "$candidate" -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' \
            >/dev/null 2>&1; then
        echo "$candidate"
        exit 0
    fi
done
echo python3
