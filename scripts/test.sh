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

# Open geo data (CC0 country mmdb, CC BY 4.0 DB-IP ASN table), pinned and
# checksummed; tests that need it skip with a message when it is missing.
if [ -x scripts/fetch-geodata.sh ]; then
  scripts/fetch-geodata.sh testdata/geodata || echo "test.sh: geo data unavailable; geo tests will skip" >&2
fi

export PORTCULLIS_GEODATA="${PORTCULLIS_GEODATA:-$PWD/testdata/geodata}"
go vet ./...
exec go test -count=1 -timeout 15m "$@" ./...
