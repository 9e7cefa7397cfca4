#!/usr/bin/env bash
# bench/profile.sh — CPU and allocation profile of Portcullis' request path
# under the same wrk load as bench/edge.sh (loopback, Go origin).
#
# Usage: bench/profile.sh [clean|deny] [SECONDS] [OUTDIR]
#   clean  proxied GET / (default);  deny  every request from a denied source
# Writes OUTDIR/{cpu,allocs}.pprof and OUTDIR/{cpu,allocs}-top.txt and prints
# the top of each. Inspect further with: go tool pprof -http=: OUTDIR/cpu.pprof
# The profiled server is bench/profile (app.New/Run with the same flags-only
# config as `portcullis serve`), so the product binary needs no profile flag.
set -euo pipefail
SCENARIO=${1:-clean} SECONDS_=${2:-10} OUT=${3:-/tmp/portcullis-profile}
DENIED=198.51.100.7
case "$SCENARIO" in clean | deny) ;; *) echo "profile.sh: clean|deny" >&2; exit 2 ;; esac
[ "$SECONDS_" -le 60 ] || { echo "profile.sh: at most 60 s" >&2; exit 2; }
command -v wrk >/dev/null || { echo "profile.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/portcullis-profile.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port() { echo $((20000 + RANDOM % 20000)); }
waitport() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 not up" >&2; exit 1; }

cd "$ROOT"
go build -o "$TMP/origin" ./bench/origin
go build -o "$TMP/profile" ./bench/profile
OPORT=$(port) PPORT=$(port)
"$TMP/origin" -listen "127.0.0.1:$OPORT" >"$TMP/origin.log" 2>&1 &
PIDS+=($!)
waitport "$OPORT"
"$TMP/profile" -listen "127.0.0.1:$PPORT" -origin "http://127.0.0.1:$OPORT" \
	-deny "$DENIED/32" -trusted-proxy 127.0.0.1/32 -data-dir "$TMP/data" \
	-cpuprofile "$OUT/cpu.pprof" -memprofile "$OUT/allocs.pprof" >"$OUT/server.log" 2>&1 &
SPID=$!
PIDS+=($SPID)
waitport "$PPORT"
sleep 1 # first health check
hdr=()
[ "$SCENARIO" = deny ] && hdr=(-H "X-Forwarded-For: $DENIED")
timeout $((SECONDS_ + 15)) wrk -t2 -c64 -d"${SECONDS_}s" --latency "${hdr[@]}" "http://127.0.0.1:$PPORT/" | tee "$OUT/wrk.txt"
kill -INT "$SPID"
for _ in $(seq 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
go tool pprof -top -nodecount=45 "$TMP/profile" "$OUT/cpu.pprof" >"$OUT/cpu-top.txt" 2>/dev/null
go tool pprof -top -cum -nodecount=60 "$TMP/profile" "$OUT/cpu.pprof" >"$OUT/cpu-cum.txt" 2>/dev/null
go tool pprof -top -sample_index=alloc_space -nodecount=30 "$TMP/profile" "$OUT/allocs.pprof" >"$OUT/allocs-top.txt" 2>/dev/null
go tool pprof -top -sample_index=alloc_objects -nodecount=30 "$TMP/profile" "$OUT/allocs.pprof" >"$OUT/allocs-objects.txt" 2>/dev/null
cp "$TMP/profile" "$OUT/profile.bin"
head -40 "$OUT/cpu-top.txt"
echo ...
head -25 "$OUT/allocs-objects.txt"
