#!/usr/bin/env bash
# Runs Portcullis' whole test suite on a fresh machine: installs the real
# tools the tests drive (idempotently), fetches the open geo data, then runs
# `go test` over every package. Usage: ./scripts/test.sh [go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."

# Real clients and attack tools the end-to-end tests use.
need=()
command -v curl >/dev/null         || need+=(curl)
command -v wrk >/dev/null          || need+=(wrk)
command -v h2load >/dev/null       || need+=(nghttp2-client)
command -v slowhttptest >/dev/null || need+=(slowhttptest)
command -v xmllint >/dev/null      || need+=(libxml2-utils)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq </dev/null >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null >/dev/null
fi

# Real headless Chromium (Debian's chromium) and playwright-core, pinned in
# test/browser/package-lock.json, for the browser test
# (internal/app/mitigation_browser_test.go). Installed when missing; if that
# fails the test skips and says why, otherwise PORTCULLIS_BROWSER_TESTS=1
# makes anything missing a failure.
browser_ok=1
if ! command -v chromium >/dev/null; then
  echo "test.sh: installing chromium" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
  export DEBIAN_FRONTEND=noninteractive
  { $SUDO apt-get update -qq \
      && $SUDO apt-get install -y -qq --no-install-recommends chromium; } </dev/null >/dev/null \
    || { echo "test.sh: chromium could not be installed; the browser test will skip" >&2; browser_ok=0; }
fi
if [ "$browser_ok" = 1 ]; then
  if ! command -v npm >/dev/null; then
    echo "test.sh: npm not found; the browser test will skip" >&2
    browser_ok=0
  elif ! (cd test/browser && npm ls --silent playwright-core >/dev/null 2>&1); then
    echo "test.sh: installing playwright-core into test/browser" >&2
    (cd test/browser && npm ci --no-audit --no-fund --silent </dev/null >/dev/null) \
      || { echo "test.sh: playwright-core could not be installed; the browser test will skip" >&2; browser_ok=0; }
  fi
fi
if [ "$browser_ok" = 1 ]; then export PORTCULLIS_BROWSER_TESTS=1; fi

# Open geo data (CC0 country mmdb, CC BY 4.0 DB-IP ASN table), pinned and
# checksummed; tests that need it skip with a message when it is missing.
if [ -x scripts/fetch-geodata.sh ]; then
  scripts/fetch-geodata.sh testdata/geodata || echo "test.sh: geo data unavailable; geo tests will skip" >&2
fi

export PORTCULLIS_GEODATA="${PORTCULLIS_GEODATA:-$PWD/testdata/geodata}"
go vet ./...
exec go test -count=1 -timeout 15m "$@" ./...
