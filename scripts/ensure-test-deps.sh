#!/usr/bin/env bash
# Installs the system packages the tests drive for real, from the distribution's registry, when
# they are missing: SoftHSM2 (PKCS#11), PostgreSQL's server binaries (initdb, pg_ctl: the tests
# start throwaway clusters of their own and never rely on a server the machine happens to run),
# nginx and HAProxy (deploy/'s configurations), OpenSSL, Chromium (the console's browser tests
# drive it with Playwright for Python, from the dev lock, pointed at /usr/bin/chromium).
#
# On a developer's machine where they cannot be installed (not root, no apt-get), the tests
# that need them skip, loudly. Under CI (CI=true) that is a failure, here and in the tests
# (tests/components.py): CI must not go green by not testing a headline feature.
set -u
ci=false
case "${CI:-}" in 1|true|TRUE|True|yes) ci=true ;; esac

have_postgres() {
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && return 0
  done
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1
}
have_softhsm() {
  command -v softhsm2-util >/dev/null 2>&1 || return 1
  for lib in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*-linux-gnu/softhsm/libsofthsm2.so; do
    [ -e "$lib" ] && return 0
  done
  return 1
}

missing=()
have_softhsm || missing+=(softhsm2)
have_postgres || missing+=(postgresql)
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

fail() {
  echo "ensure-test-deps: $*" >&2
  if $ci; then
    echo "ensure-test-deps: CI=true, so this fails the run" >&2
    exit 1
  fi
  echo "ensure-test-deps: the tests that need them will skip, loudly" >&2
  exit 0
}

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  fail "cannot install ${missing[*]} (not root, or no apt-get)"
fi
echo "ensure-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  rm -f "$log"
  fail "apt-get could not install ${missing[*]}"
fi
rm -f "$log"
# The Debian package starts a cluster of its own; the tests never use it.
have_postgres || fail "postgresql was installed but initdb/pg_ctl are not found"
have_softhsm || fail "softhsm2 was installed but softhsm2-util or its module is not found"
[ -x /usr/bin/chromium ] || fail "chromium was installed but /usr/bin/chromium is not found"
exit 0
