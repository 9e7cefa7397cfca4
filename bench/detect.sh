#!/usr/bin/env bash
# bench/detect.sh — the detection-side figures of BENCHMARKS.md, in one run:
# parsing and end-to-end replay throughput, request-path accounting cost,
# memory for 10,000,000 distinct sources, decision path, and detection delay
# on event time. Prints Markdown; with --write replaces the section in
# BENCHMARKS.md. Bounded: every benchmark has a fixed benchtime.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() { echo "\$ $*" >>"$out"; "$@" 2>&1 | grep -E '^(Benchmark|ok|---|\s+\S+_test.go)' | grep -v '^ok' >>"$out" || true; echo >>"$out"; }
{
  echo "## Detection, replay and the decision path"
  echo
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) at commit \`$(git rev-parse --short HEAD)\` with \`bench/detect.sh --write\`;"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (2 shared cores: figures are noisy, compare within one run)."
  echo
  echo '```'
} >"$out.head"
run go test -run='^$' -bench='ParseCombined|Pcap$|PcapHTTP' -benchtime=1s ./internal/replay/
run go test -run='^$' -bench='RunDense|RunPcapDense' -benchtime=3x ./internal/replay/
run go test -run='^$' -bench='ObserveRequest$|ObserveRequestProducer|ObservePacket' -benchtime=1s ./internal/stats/
run go test -run='^$' -bench='Decide' -benchtime=1s ./internal/filter/
run go test -run='^$' -bench='Lookup' -benchtime=1s ./internal/mitigate/
run go test -run='^$' -bench='VerifyClearance' -benchtime=1s ./internal/challenge/
echo "\$ go test -run TestTenMillionSources -v ./internal/stats/" >>"$out"
go test -count=1 -run TestTenMillionSources -v ./internal/stats/ 2>&1 | grep -E 'heap|PASS|FAIL' >>"$out" || true
echo >>"$out"
echo "\$ go test -run TestScenario -v ./internal/detect/  # incidents: flood start (scenario) vs detected" >>"$out"
go test -count=1 -run 'TestScenario' -v ./internal/detect/ 2>&1 | grep -E 'detected=' | sed -E 's/^ *scenario_test.go:[0-9]+: //' | head -40 >>"$out" || true
{ cat "$out.head" "$out"; echo '```'; } >"$out.md"
rm -f "$out.head"
cat "$out.md"
if [ "${1:-}" = "--write" ]; then
  python3 - "$out.md" <<'PY'
import sys, re
sec = open(sys.argv[1]).read().rstrip() + "\n"
p = "BENCHMARKS.md"
try:
    s = open(p).read()
except FileNotFoundError:
    s = "# Benchmarks\n\n"
head = "## Detection, replay and the decision path"
if head in s:
    i = s.index(head)
    j = s.find("\n## ", i + 1)
    s = s[:i] + sec + ("" if j < 0 else s[j:])
else:
    s = s.rstrip() + "\n\n" + sec
open(p, "w").write(s)
PY
  rm -f "$out.md"
fi
