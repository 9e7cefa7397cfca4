#!/usr/bin/env bash
# bench/edge.sh — Portcullis vs nginx vs HAProxy in front of one origin, on
# loopback, side by side in one run (issue 2, "Performance").
#
#   (a) clean proxied throughput and p99 latency (GET / → 1 KiB body);
#   (b) the reject path: every request claims (X-Forwarded-For, trusted from
#       127.0.0.1) to come from the denied source 198.51.100.7 → 403.
#
# Rounds alternate: each round runs every (scenario, proxy) pair once, with
# the proxy order rotated per round; the table reports medians over rounds.
# All three proxies run at the same time and face the same CPU contention
# (wrk, the proxy and the origin share the machine's cores).
#
# Usage: bench/edge.sh [--write] [--rounds N] [--duration SECONDS]
#                      [--conns N] [--threads N] [--origin go|nginx] [--keep]
#   --write     replace the "## Edge: proxied throughput and reject path"
#               section of BENCHMARKS.md with this run's result
#   --keep      keep the temp dir (configs, logs, raw wrk output)
#   --origin    nginx (default: `return 200` of a fixed 1 KiB body) or go
#               (bench/origin, net/http); both keep connections alive
#   --warmup S  seconds of warm-up per proxy and path before round 1 (2)
#   --rev REV   build Portcullis from the committed tree REV (git archive)
#               instead of the working tree, e.g. when others are mid-edit
#   --floor     also measure bench/floor's calibration toys (raw Go loop,
#               net/http + synchronous upstream, net/http +
#               httputil.ReverseProxy, fasthttp + HostClient, fasthttp +
#               PipelineClient); needs fewer rounds or a shorter duration to
#               stay in the time bound, e.g. --rounds 1 --duration 5
#   --floor-modes "M ..."  only these bench/floor modes (implies --floor)
#   --variant "K=V ..."  (repeatable) also run a second Portcullis with these
#               environment variables (e.g. "GOGC=400", "GOMAXPROCS=1",
#               "GOGC=off GOMEMLIMIT=512MiB"), measured in the same
#               alternating rounds as a row "Portcullis (K=V ...)"
# Environment: PORTCULLIS_BIN=path uses a prebuilt binary instead of building;
# PORTCULLIS_GOMAXPROCS=N runs Portcullis with GOMAXPROCS=N (default: Go's);
# PORTCULLIS_GOGC=N and PORTCULLIS_GOMEMLIMIT=SIZE set GOGC / GOMEMLIMIT for
# Portcullis only (default: Go's, GOGC=100 and no limit).
#
# Bounded: every wrk run has a duration and a hard timeout; the defaults
# (3 rounds × 2 scenarios × 3 proxies × 10 s + 1 warm-up each) take ~3.5 min.
set -euo pipefail

ROUNDS=3 DURATION=10 CONNS=64 THREADS=2 ORIGIN_KIND=nginx WRITE=0 KEEP=0 WARMUP=2 FLOOR=0 REV=
FLOOR_MODES="raw nethttp-sync nethttp-rp fasthttp fasthttp-pipe"
VARIANTS=()
DENIED=198.51.100.7
SECTION="## Edge: proxied throughput and reject path"
ARGS=("$@")
while [ $# -gt 0 ]; do
	case "$1" in
	--write) WRITE=1 ;;
	--keep) KEEP=1 ;;
	--floor) FLOOR=1 ;;
	--rev) REV=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--conns) CONNS=$2; shift ;;
	--threads) THREADS=$2; shift ;;
	--origin) ORIGIN_KIND=$2; shift ;;
	--warmup) WARMUP=$2; shift ;;
	--floor-modes) FLOOR=1 FLOOR_MODES=$2; shift ;;
	--variant) VARIANTS+=("$2"); shift ;;
	-h | --help) sed -n '2,39p' "$0"; exit 0 ;;
	*) echo "edge.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
case "$ORIGIN_KIND" in go | nginx) ;; *) echo "edge.sh: --origin go|nginx" >&2; exit 2 ;; esac
NFLOOR=$(wc -w <<<"$FLOOR_MODES")
NPROX=$((FLOOR ? 3 + NFLOOR : 3))
NPROX=$((NPROX + ${#VARIANTS[@]}))
budget=$((ROUNDS * 2 * NPROX * (DURATION + 2) + 2 * NPROX * (WARMUP + 2) + 20))
if [ "$budget" -gt 290 ]; then
	echo "edge.sh: ~${budget}s estimated; keep rounds×duration under the 5-minute bound" >&2
	exit 2
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
log() { printf '[edge.sh] %s\n' "$*" >&2; }

# --- tools (Debian packages; idempotent) -----------------------------------
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
	# The Debian packages may start a system nginx/haproxy; this benchmark
	# runs its own instances on free loopback ports and does not use them.
fi
export PATH="$PATH:/usr/sbin:/sbin"

# --- temp dir and cleanup ---------------------------------------------------
TMP=$(mktemp -d /tmp/portcullis-edge-bench.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
	done
	if [ "$KEEP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

freeport() { # a free loopback TCP port not yet handed out in this run
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		case " ${USED_PORTS:-} " in *" $p "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			USED_PORTS="${USED_PORTS:-} $p"
			echo "$p"
			return
		fi
	done
}
waitport() { # waitport PORT NAME: wait up to 10 s for a listener
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	log "$2 did not start on port $1; its log:"
	cat "$TMP/$2.log" >&2 || true
	exit 1
}

OPORT=$(freeport) PPORT=$(freeport) NPORT=$(freeport) HPORT=$(freeport)

# --- build --------------------------------------------------------------------
cd "$ROOT"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD -- cmd internal 2>/dev/null || COMMIT="$COMMIT+uncommitted"
if [ -n "${PORTCULLIS_BIN:-}" ]; then
	cp "$PORTCULLIS_BIN" "$TMP/portcullis"
	COMMIT="prebuilt $PORTCULLIS_BIN"
elif [ -n "$REV" ]; then
	log "building portcullis from $REV"
	mkdir -p "$TMP/src"
	git -C "$ROOT" archive "$REV" | tar -x -C "$TMP/src"
	(cd "$TMP/src" && go build -o "$TMP/portcullis" ./cmd/portcullis)
	COMMIT=$(git -C "$ROOT" rev-parse --short "$REV")
else
	log "building portcullis and the origin"
	go build -o "$TMP/portcullis" ./cmd/portcullis
fi
[ "$ORIGIN_KIND" = go ] && go build -o "$TMP/origin" ./bench/origin
[ "$FLOOR" = 1 ] && go build -o "$TMP/floor" ./bench/floor

# --- origin ---------------------------------------------------------------------
# 1024-byte body: "portcullis-bench-origin " and 1000 x's (no quotes, no escapes).
BODY="portcullis-bench-origin $(head -c 1000 /dev/zero | tr '\0' x)"
mkdir -p "$TMP/nginx-origin" "$TMP/nginx-proxy"
if [ "$ORIGIN_KIND" = go ]; then
	"$TMP/origin" -listen "127.0.0.1:$OPORT" -bytes 1024 >"$TMP/origin.log" 2>&1 &
	PIDS+=($!)
else
	cat >"$TMP/nginx-origin.conf" <<EOF
worker_processes 1;
pid $TMP/nginx-origin/nginx.pid;
error_log $TMP/origin.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx-origin;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$OPORT;
        location / {
            default_type text/plain;
            return 200 '$BODY';
        }
    }
}
EOF
	nginx -p "$TMP/nginx-origin" -c "$TMP/nginx-origin.conf" -g 'daemon off;' >"$TMP/origin-stdout.log" 2>&1 &
	PIDS+=($!)
fi
waitport "$OPORT" origin

# --- proxies ---------------------------------------------------------------------
# nginx: workers auto, upstream keepalive 64, HTTP/1.1 upstream, real client
# address from X-Forwarded-For trusted from 127.0.0.1, deny list of one.
cat >"$TMP/nginx-proxy.conf" <<EOF
worker_processes auto;
pid $TMP/nginx-proxy/nginx.pid;
error_log $TMP/nginx.log crit; # not error: nginx would log every denied request
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx-proxy;
    proxy_temp_path $TMP/nginx-proxy;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    upstream origin {
        server 127.0.0.1:$OPORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    server {
        listen 127.0.0.1:$NPORT;
        deny $DENIED;
        allow all;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
nginx -p "$TMP/nginx-proxy" -c "$TMP/nginx-proxy.conf" -g 'daemon off;' >"$TMP/nginx-stdout.log" 2>&1 &
PIDS+=($!)
NGINX_PID=$!

# HAProxy: nbthread 2, http mode, http-reuse always, source from
# X-Forwarded-For when the peer is 127.0.0.1, deny of one source.
cat >"$TMP/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn 8192
    log stderr format raw local0 warning
defaults
    mode http
    log global
    option http-keep-alive
    http-reuse always
    timeout connect 3s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 120s
frontend fe
    bind 127.0.0.1:$HPORT
    http-request set-src hdr_ip(X-Forwarded-For,-1) if { src 127.0.0.1 } { req.hdr_cnt(X-Forwarded-For) gt 0 }
    http-request deny if { src $DENIED }
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    default_backend be
backend be
    server origin 127.0.0.1:$OPORT maxconn 512
EOF
haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
PIDS+=($!)
HAPROXY_PID=$!

# Portcullis: the same deny rule and trusted proxy as flags. A single wrk
# source at tens of thousands of requests per second is, to Portcullis'
# detector, a flood, and in enforce mode it would (rightly) block it within
# seconds and the run would measure its block path instead of (a). So the
# config file sets mitigation.mode: observe (detection and accounting still
# run on every request; automatic decisions are not applied). A build that
# predates mitigation rejects the key; then no config file is used.
PCONF=()
printf 'mitigation:\n  mode: observe\n' >"$TMP/portcullis.yaml"
if "$TMP/portcullis" check --config "$TMP/portcullis.yaml" --origin "http://127.0.0.1:$OPORT" >/dev/null 2>&1; then
	PCONF=(--config "$TMP/portcullis.yaml")
	MITIGATION=" --config portcullis.yaml\` with \`mitigation: {mode: observe}\`"
else
	MITIGATION="\` (this build has no mitigation.mode)"
fi
PENV=(env)
[ -n "${PORTCULLIS_GOMAXPROCS:-}" ] && PENV+=("GOMAXPROCS=$PORTCULLIS_GOMAXPROCS")
[ -n "${PORTCULLIS_GOGC:-}" ] && PENV+=("GOGC=$PORTCULLIS_GOGC")
[ -n "${PORTCULLIS_GOMEMLIMIT:-}" ] && PENV+=("GOMEMLIMIT=$PORTCULLIS_GOMEMLIMIT")
"${PENV[@]}" "$TMP/portcullis" serve --listen "127.0.0.1:$PPORT" --origin "http://127.0.0.1:$OPORT" --admin off \
	--deny "$DENIED/32" --trusted-proxy 127.0.0.1/32 --data-dir "$TMP/portcullis-data" "${PCONF[@]}" >"$TMP/portcullis.log" 2>&1 &
PIDS+=($!)
PORTCULLIS_PID=$!

declare -A PORT PID
if [ "$FLOOR" = 1 ]; then
	for m in $FLOOR_MODES; do
		PORT[floor-$m]=$(freeport)
		"$TMP/floor" -mode "$m" -listen "127.0.0.1:${PORT[floor-$m]}" -origin "127.0.0.1:$OPORT" -deny "$DENIED" >"$TMP/floor-$m.log" 2>&1 &
		PIDS+=($!)
		PID[floor-$m]=$!
		waitport "${PORT[floor-$m]}" "floor-$m"
	done
fi
waitport "$NPORT" nginx
waitport "$HPORT" haproxy
waitport "$PPORT" portcullis
declare -A VNAME
for i in "${!VARIANTS[@]}"; do
	k=portcullis-v$i
	PORT[$k]=$(freeport)
	read -r -a venv <<<"${VARIANTS[$i]}"
	env "${venv[@]}" "$TMP/portcullis" serve --listen "127.0.0.1:${PORT[$k]}" --origin "http://127.0.0.1:$OPORT" --admin off \
		--deny "$DENIED/32" --trusted-proxy 127.0.0.1/32 --data-dir "$TMP/$k-data" "${PCONF[@]}" >"$TMP/$k.log" 2>&1 &
	PIDS+=($!)
	PID[$k]=$!
	VNAME[$k]="Portcullis (${VARIANTS[$i]})"
	waitport "${PORT[$k]}" "$k"
done

PORT+=([portcullis]=$PPORT [nginx]=$NPORT [haproxy]=$HPORT)
PID+=([portcullis]=$PORTCULLIS_PID [nginx]=$NGINX_PID [haproxy]=$HAPROXY_PID)
HZ=$(getconf CLK_TCK)
# cputicks PID: user+system CPU ticks of a process, its threads and its
# children (nginx workers), from /proc.
cputicks() {
	local p t=0 v
	for p in "$1" $(pgrep -P "$1" || true); do
		v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || v=0
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
PROXIES=(portcullis nginx haproxy)
for i in "${!VARIANTS[@]}"; do PROXIES+=("portcullis-v$i"); done
if [ "$FLOOR" = 1 ]; then for m in $FLOOR_MODES; do PROXIES+=("floor-$m"); done; fi
SCENARIOS=(clean deny)

# --- sanity: each proxy passes the body and refuses the denied source -------
declare -A KEEPALIVE_403
for p in "${PROXIES[@]}"; do
	for _ in $(seq 50); do # Portcullis' first health check may lag the listener
		code=$(curl -s -o "$TMP/check-$p" -w '%{http_code}' "http://127.0.0.1:${PORT[$p]}/") || code=000
		[ "$code" = 200 ] && break
		sleep 0.1
	done
	size=$(wc -c <"$TMP/check-$p")
	if [ "$code" != 200 ] || [ "$size" != 1024 ]; then
		log "$p: clean request gave HTTP $code with $size bytes (want 200, 1024)"
		exit 1
	fi
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Forwarded-For: $DENIED" "http://127.0.0.1:${PORT[$p]}/") || code=000
	if [ "$code" != 403 ]; then
		log "$p: denied source got HTTP $code (want 403)"
		exit 1
	fi
	# Does the proxy keep the client connection open after a 403? (Two
	# requests on one curl handle: one connect means it was reused.)
	n=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' -H "X-Forwarded-For: $DENIED" \
		"http://127.0.0.1:${PORT[$p]}/" "http://127.0.0.1:${PORT[$p]}/" | awk '{n += $1} END {print n}')
	if [ "$n" = 1 ]; then KEEPALIVE_403[$p]=yes; else KEEPALIVE_403[$p]="no (closes)"; fi
done

# --- load ---------------------------------------------------------------------
# wrkrun PROXY SCENARIO SECONDS OUTFILE
wrkrun() {
	local hdr=()
	[ "$2" = deny ] && hdr=(-H "X-Forwarded-For: $DENIED")
	timeout $(($3 + 15)) wrk -t"$THREADS" -c"$CONNS" -d"$3s" --latency "${hdr[@]}" \
		"http://127.0.0.1:${PORT[$1]}/" >"$4" 2>&1 || { log "wrk failed for $1/$2"; cat "$4" >&2; exit 1; }
}
# wrkparse FILE → "rps p99_ms requests non2xx errors"
wrkparse() {
	awk '
	function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /m$/) return v*60000; if (v ~ /s$/) return v*1000; return v }
	/^ +99%/ { p99 = ms($2) }
	/^Requests\/sec:/ { rps = $2 }
	/requests in/ { total = $1 }
	/Non-2xx or 3xx responses:/ { non2xx = $5 }
	/Socket errors:/ { gsub(/,/, ""); errs = $4 + $6 + $8 + $10 }
	END { printf "%.0f %.3f %d %d %d\n", rps, p99, total, non2xx, errs }' "$1"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "origin=$ORIGIN_KIND ports: portcullis=$PPORT nginx=$NPORT haproxy=$HPORT origin=$OPORT; load average $LOAD_BEFORE"
log "warm-up ${WARMUP}s per proxy and scenario"
for s in "${SCENARIOS[@]}"; do for p in "${PROXIES[@]}"; do wrkrun "$p" "$s" "$WARMUP" "$TMP/warmup-$p-$s.txt"; done; done

RAW="$TMP/raw.tsv"
: >"$RAW"
for r in $(seq "$ROUNDS"); do
	# rotate the proxy order each round so no proxy always runs first
	order=("${PROXIES[@]:$(((r - 1) % ${#PROXIES[@]}))}" "${PROXIES[@]:0:$(((r - 1) % ${#PROXIES[@]}))}")
	for s in "${SCENARIOS[@]}"; do
		for p in "${order[@]}"; do
			out="$TMP/wrk-r$r-$p-$s.txt"
			c0=$(cputicks "${PID[$p]}")
			wrkrun "$p" "$s" "$DURATION" "$out"
			c1=$(cputicks "${PID[$p]}")
			read -r rps p99 total non2xx errs < <(wrkparse "$out")
			cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$total" 'BEGIN { printf "%.1f", (n > 0 ? t / hz * 1e6 / n : 0) }')
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$s" "$p" "$rps" "$p99" "$total" "$non2xx" "$errs" "$cpu" >>"$RAW"
			log "round $r $s $p: ${rps} req/s, p99 ${p99} ms, proxy CPU ${cpu} µs/req, non-2xx ${non2xx}/${total}, socket errors ${errs}"
		done
	done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ---------------------------------------------------------------------
median() { sort -g | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
col() { awk -F'\t' -v s="$1" -v p="$2" -v c="$3" '$2==s && $3==p {print $c}' "$RAW"; }
declare -A RPS P99 CPU RANGE
for s in "${SCENARIOS[@]}"; do for p in "${PROXIES[@]}"; do
	RPS[$s.$p]=$(col "$s" "$p" 4 | median)
	P99[$s.$p]=$(col "$s" "$p" 5 | median)
	CPU[$s.$p]=$(col "$s" "$p" 9 | median)
	RANGE[$s.$p]="$(col "$s" "$p" 4 | sort -g | head -1)–$(col "$s" "$p" 4 | sort -g | tail -1)"
done; done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a/b; else print "n/a" }'; }
# Warn when a run did not do what it claims (clean must be all 2xx,
# deny must be all 403, no socket errors).
WARN=$(awk -F'\t' '($2=="clean" && $7>0) || ($2=="deny" && $7!=$6) || $8>0 {printf "round %s %s %s: non-2xx %s of %s, socket errors %s; ", $1,$2,$3,$7,$6,$8}' "$RAW")
declare -A NAME=([portcullis]=Portcullis [nginx]=nginx [haproxy]=HAProxy [floor-raw]="floor: raw Go loop (toy)"
	[floor-nethttp-sync]="floor: net/http + sync upstream (toy)" [floor-nethttp-rp]="floor: net/http + ReverseProxy (toy)"
	[floor-fasthttp]="floor: fasthttp + HostClient (toy)" [floor-fasthttp-pipe]="floor: fasthttp + PipelineClient (toy)")
for k in "${!VNAME[@]}"; do NAME[$k]=${VNAME[$k]}; done
declare -A PATHNAME=([clean]="(a) clean proxied GET, 1 KiB" [deny]="(b) reject denied source, 403")

CMD="bench/edge.sh"
for a in "${ARGS[@]}"; do case "$a" in *[!A-Za-z0-9_.,/:=+-]*) CMD+=" '$a'" ;; *) CMD+=" $a" ;; esac; done
[ -n "${PORTCULLIS_GOMAXPROCS:-}" ] && CMD="PORTCULLIS_GOMAXPROCS=$PORTCULLIS_GOMAXPROCS $CMD"
[ -n "${PORTCULLIS_GOGC:-}" ] && CMD="PORTCULLIS_GOGC=$PORTCULLIS_GOGC $CMD"
[ -n "${PORTCULLIS_GOMEMLIMIT:-}" ] && CMD="PORTCULLIS_GOMEMLIMIT=$PORTCULLIS_GOMEMLIMIT $CMD"
if [ "$ORIGIN_KIND" = go ]; then
	ORIGIN_DESC="bench/origin (Go net/http, fixed 1 KiB body, keep-alive)."
else
	ORIGIN_DESC='one nginx worker answering `return 200` with a fixed 1 KiB body, keep-alive (chosen over
bench/origin, a Go net/http server, because it needs ~11 µs of CPU per request here against ~35 µs,
which leaves more of the two cores to the proxy under test, and its latency is steadier).'
fi
REPORT="$TMP/report.md"
{
	echo "$SECTION"
	echo
	echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) at commit \`$COMMIT\` with"
	echo
	echo '```'
	echo "$CMD"
	echo '```'
	echo
	echo "wrk \`-t$THREADS -c$CONNS -d${DURATION}s --latency\` against each proxy on loopback, $ROUNDS alternating rounds"
	echo "(each round runs every proxy once per path, proxy order rotated per round); medians over rounds."
	echo "(b) adds \`-H 'X-Forwarded-For: $DENIED'\`. Origin: $ORIGIN_DESC"
	echo
	echo "| Path | req/s Portcullis/nginx | req/s Portcullis/HAProxy | target | CPU per request Portcullis/nginx | CPU per request Portcullis/HAProxy |"
	echo "|---|---:|---:|---|---:|---:|"
	echo "| ${PATHNAME[clean]} | **$(ratio "${RPS[clean.portcullis]}" "${RPS[clean.nginx]}")** | $(ratio "${RPS[clean.portcullis]}" "${RPS[clean.haproxy]}") | ≥1.0× nginx | $(ratio "${CPU[clean.portcullis]}" "${CPU[clean.nginx]}") | $(ratio "${CPU[clean.portcullis]}" "${CPU[clean.haproxy]}") |"
	echo "| ${PATHNAME[deny]} | $(ratio "${RPS[deny.portcullis]}" "${RPS[deny.nginx]}") | **$(ratio "${RPS[deny.portcullis]}" "${RPS[deny.haproxy]}")** | ≥1.0× HAProxy | $(ratio "${CPU[deny.portcullis]}" "${CPU[deny.nginx]}") | $(ratio "${CPU[deny.portcullis]}" "${CPU[deny.haproxy]}") |"
	echo
	echo "| Path | Proxy | req/s (median) | req/s min–max | p99 latency | proxy CPU per request |"
	echo "|---|---|---:|---:|---:|---:|"
	for s in "${SCENARIOS[@]}"; do for p in "${PROXIES[@]}"; do
		echo "| ${PATHNAME[$s]} | ${NAME[$p]} | ${RPS[$s.$p]} | ${RANGE[$s.$p]} | ${P99[$s.$p]} ms | ${CPU[$s.$p]} µs |"
	done; done
	echo
	echo "Proxy CPU per request is the user+system CPU time the proxy's processes used during the run"
	echo "(from /proc, all threads and nginx workers) divided by the requests wrk completed: it shows"
	echo "how much of the shared cores each proxy needs per request, whatever else was running."
	if [ "$FLOOR" = 1 ]; then
		echo "The \"floor\" rows are bench/floor's calibration toys (no hardening, no smuggling checks, no"
		echo "streaming): what a Go proxy of each design costs here, not candidates to ship."
	fi
	echo "Portcullis ran as \`portcullis serve --listen 127.0.0.1:P --origin http://127.0.0.1:O --admin off"
	echo "--deny $DENIED/32 --trusted-proxy 127.0.0.1/32 --data-dir TMP$MITIGATION: one wrk source at"
	echo "this rate is a flood to its detector, and enforce mode would block it and measure the block path"
	echo "instead; detection and accounting still run on every request."
	echo "Connection kept open after a 403: Portcullis ${KEEPALIVE_403[portcullis]}, nginx ${KEEPALIVE_403[nginx]}, HAProxy ${KEEPALIVE_403[haproxy]}."
	if [ -n "$WARN" ]; then echo; echo "**Check:** $WARN"; fi
	echo
	echo "Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)); load average $LOAD_BEFORE before, $LOAD_AFTER after."
	if awk -v a="${LOAD_BEFORE%% *}" -v b="${LOAD_AFTER%% *}" -v n="$(nproc)" 'BEGIN { exit !(a > n || b > n) }'; then
		echo "The 1-minute load average exceeded the core count: other work shared the machine during the"
		echo "run, so absolute req/s and their spread are noisy; the ratios and CPU per request are steadier."
	fi
	echo "Versions: $(go version | awk '{print $3}'), $(nginx -v 2>&1 | sed 's/^nginx version: //'), HAProxy $(haproxy -v | awk 'NR==1 {print $3}'), wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}')."
	echo
	echo "CPU contention: wrk, the proxy under test and the origin share the same $(nproc) cores (the two"
	echo "idle proxies stay running). Portcullis runs with GOMAXPROCS=${PORTCULLIS_GOMAXPROCS:-$(nproc) (the Go default)},"
	echo "nginx with \`worker_processes auto\` ($(nproc) workers), HAProxy with \`nbthread 2\`; no CPU pinning."
	echo "Absolute figures are far below what a dedicated machine gives, but the comparison is fair:"
	echo "each proxy faces the same load generator and origin competing for the same cores."
	echo "All three evaluate the deny rule on every request and add X-Forwarded-For and"
	echo "X-Forwarded-Proto for the origin; Portcullis also adds X-Forwarded-Host and a request id"
	echo "and does its per-request accounting. Neither nginx (error_log at crit, which silences its"
	echo "per-denial error line) nor HAProxy logs per request; Portcullis logs its denials, sampled."
} >"$REPORT"

cat "$REPORT"
if [ "$WRITE" = 1 ]; then
	BM="$ROOT/BENCHMARKS.md"
	[ -f "$BM" ] || printf '# Benchmarks\n\nMeasured figures for Portcullis, each section with the command that produced it.\n\n' >"$BM"
	python3 - "$BM" "$REPORT" "$SECTION" <<'PY'
import re, sys
path, report, section = sys.argv[1:4]
text = open(path).read()
new = open(report).read().rstrip("\n") + "\n"
start = text.find(section + "\n")
if start < 0:
    text = text.rstrip("\n") + "\n\n" + new
else:
    m = re.compile(r"^## ", re.M).search(text, start + len(section))
    end = m.start() if m else len(text)
    tail = text[end:]
    text = text[:start] + new + ("\n" + tail if tail else "")
open(path, "w").write(text)
PY
	log "wrote the section into $BM"
fi
