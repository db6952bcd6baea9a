#!/usr/bin/env bash
# Installs tests/clients/js's locked npm dependencies (package-lock.json, integrity hashes
# checked by `npm ci`) and runs one of its scripts. Called by tests/secretsmanager/
# test_clients_js.py, which `make test` runs; exits 3 when Node or npm is missing so that the
# test can skip loudly (or fail under CI=true, tests/components.py).
#
#   scripts/js-client-test.sh install          only install (idempotent: skipped when the lock
#                                              has not changed since the last install)
#   scripts/js-client-test.sh run SCRIPT.mjs   install, then run node SCRIPT.mjs
set -euo pipefail
here=$(cd "$(dirname "$0")/../tests/clients/js" && pwd)
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "js-client-test: $tool is not installed" >&2
    exit 3
  fi
done
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "js-client-test: Node $major is too old (the AWS SDK v3 needs 18 or later)" >&2
  exit 3
fi
stamp="$here/node_modules/.openkms-lock.sha256"
want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # `npm ci` installs exactly the lock and fails if a tarball's hash differs from its
  # integrity field; no audit or funding calls, the cache under the project directory.
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$want" >"$stamp"
fi
case "${1:-}" in
  install) exit 0 ;;
  run)
    shift
    cd "$here"
    exec node "$@"
    ;;
  *) echo "usage: $0 install | run SCRIPT.mjs" >&2; exit 2 ;;
esac
