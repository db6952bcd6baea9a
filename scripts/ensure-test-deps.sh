#!/usr/bin/env bash
# Installs the system packages some tests drive for real (SoftHSM2, nginx, HAProxy, OpenSSL),
# from the distribution's registry, when they are missing and we may install them. Tests that
# still cannot find one skip and say so loudly; nothing here fails the run.
set -u
missing=()
command -v softhsm2-util >/dev/null 2>&1 || missing+=(softhsm2)
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-deps: cannot install ${missing[*]} (not root or no apt-get); those tests will skip" >&2
  exit 0
fi
echo "ensure-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
(apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}") >/dev/null 2>&1 \
  || echo "ensure-test-deps: apt-get could not install ${missing[*]}; those tests will skip" >&2
exit 0
