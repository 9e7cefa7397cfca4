#!/usr/bin/env bash
# bench/lab.sh — the attack lab's scenarios against Portcullis, nginx and
# HAProxy in front of the same instrumented origin, side by side in one run
# (issue 6, "Side by side").
#
# For every scenario, the three fronts run one after another (order rotated
# per scenario so none always goes first on a warm machine):
#   Portcullis  `portcullis lab run S --json` (self-contained: the lab starts
#               the origin and `portcullis serve` as a child process);
#   nginx       limit_req + limit_conn keyed by the client address, as
#               nginx's documentation and its "Rate Limiting with NGINX" post
#               recommend (rate=10r/s burst=20 nodelay; 10 connections per
#               address; 5 s client header/body timeouts against slow
#               clients), real address from X-Forwarded-For trusted from
#               127.0.0.1;
#   HAProxy     a stick table with http_req_rate(10s) and conn_cur per
#               source (deny 429 above 100 requests in 10 s or 10 concurrent
#               connections, the HAProxy blog's "rate limiting" recipe),
#               source from X-Forwarded-For trusted from 127.0.0.1,
#               `timeout http-request 5s` against slow clients;
# the latter two via `portcullis lab run S --target ... --origin-listen ...
# --target-pid ... --json`, so the same traffic models, origin and score.
#
# Usage: bench/lab.sh [--write] [--keep] [SCENARIO...]
#   default scenarios: every shipped one except smoke
#   --write   replace the "## Attack lab: side by side" section of
#             BENCHMARKS.md with this run's table
#   --keep    keep the temp dir (configs, logs, raw score lines)
#   --table F render the table from the score lines of an earlier run (F is
#             its kept `scores` file) instead of running anything
# Environment: PORTCULLIS_BIN=path uses a prebuilt binary instead of building
# (PORTCULLIS_REV=commit names the commit it was built from in the table).
#
# Network: everything binds and connects to 127.0.0.1 only; every scenario is
# bounded by its phases (the lab stops by itself).
set -euo pipefail

WRITE=0 KEEP=0 SCEN=() TABLE=
SCEN_ARGS="$*"
while [ $# -gt 0 ]; do
	case "$1" in
	--write) WRITE=1 ;;
	--keep) KEEP=1 ;;
	--table) TABLE=$2; shift ;;
	-h | --help) sed -n '2,31p' "$0"; exit 0 ;;
	-*) echo "lab.sh: unknown option $1" >&2; exit 2 ;;
	*) SCEN+=("$1") ;;
	esac
	shift
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
log() { printf '[lab.sh] %s\n' "$*" >&2; }

if [ -n "$TABLE" ]; then
	[ -f "$TABLE" ] || { echo "lab.sh: --table $TABLE: no such file" >&2; exit 2; }
fi
# --- tools (Debian packages; idempotent) -----------------------------------
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v slowhttptest >/dev/null || need+=(slowhttptest)
command -v jq >/dev/null || need+=(jq)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
export PATH="$PATH:/usr/sbin:/sbin"

TMP=$(mktemp -d /tmp/portcullis-lab-bench.XXXXXX)
PIDS=()
stopall() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
	done
	PIDS=()
}
cleanup() {
	stopall
	if [ "$KEEP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

USED=" "
freeport() { # a free loopback TCP port not yet handed out in this run
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		case "$USED" in *" $p "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			USED+="$p "
			echo "$p"
			return
		fi
	done
}
waitport() { # waitport PORT NAME
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	log "$2 did not listen on 127.0.0.1:$1"; return 1
}

# --- build -------------------------------------------------------------------
if [ -n "$TABLE" ]; then
	BIN=true # nothing runs
elif [ -n "${PORTCULLIS_BIN:-}" ]; then
	BIN=$PORTCULLIS_BIN
else
	log "building portcullis"
	(cd "$ROOT" && go build -o "$TMP/portcullis" ./cmd/portcullis)
	BIN=$TMP/portcullis
fi
if [ -z "$TABLE" ] && [ ${#SCEN[@]} -eq 0 ]; then
	mapfile -t SCEN < <("$BIN" lab list | awk 'NR > 1 && $1 != "smoke" {print $1}')
fi
H2FLAG=0
"$BIN" lab run --help 2>&1 | grep -q -- '--target-h2' && H2FLAG=1

# --- fronts ---------------------------------------------------------------------
start_nginx() { # start_nginx ORIGIN_PORT → sets FRONT_URL FRONT_H2 FRONT_PID
	local port h2port dir=$TMP/nginx
	port=$(freeport) h2port=$(freeport)
	rm -rf "$dir"; mkdir -p "$dir"
	cat >"$dir/nginx.conf" <<EOF
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log crit;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $dir;
    proxy_temp_path $dir;
    # Slow clients: the documentation's advice is short header/body timeouts.
    client_header_timeout 5s;
    client_body_timeout 5s;
    send_timeout 10s;
    keepalive_timeout 65s;
    # The real client address, from the trusted hop on loopback.
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;
    # Per-address request rate and connection limits.
    limit_req_zone \$binary_remote_addr zone=perip:32m rate=10r/s;
    limit_conn_zone \$binary_remote_addr zone=addr:32m;
    limit_req_status 429;
    limit_conn_status 429;
    upstream origin {
        server 127.0.0.1:$1;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port;
        listen 127.0.0.1:$h2port http2;
        limit_req zone=perip burst=20 nodelay;
        limit_conn addr 10;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
EOF
	nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
	FRONT_PID=$!
	PIDS+=("$FRONT_PID")
	waitport "$port" nginx
	FRONT_URL=http://127.0.0.1:$port FRONT_H2=http://127.0.0.1:$h2port
}

start_haproxy() { # start_haproxy ORIGIN_PORT
	local port dir=$TMP/haproxy
	port=$(freeport)
	rm -rf "$dir"; mkdir -p "$dir"
	cat >"$dir/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn 8000
    log stderr format raw local0 warning
defaults
    mode http
    log global
    option http-keep-alive
    timeout connect 3s
    timeout client 30s
    timeout server 30s
    timeout http-request 5s
    timeout http-keep-alive 10s
frontend fe
    bind 127.0.0.1:$port
    # The real client address, from the trusted hop on loopback.
    http-request set-src hdr_ip(X-Forwarded-For,-1) if { src 127.0.0.1 } { req.hdr_cnt(X-Forwarded-For) gt 0 }
    stick-table type ip size 1m expire 30s store http_req_rate(10s),conn_cur
    http-request track-sc0 src
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 100 }
    http-request deny deny_status 429 if { sc_conn_cur(0) gt 10 }
    option forwardfor
    default_backend be
backend be
    http-reuse safe
    server origin 127.0.0.1:$1 maxconn 1000
EOF
	haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
	FRONT_PID=$!
	PIDS+=("$FRONT_PID")
	waitport "$port" haproxy
	# HAProxy accepts HTTP/2 prior knowledge on the same clear-text bind.
	FRONT_URL=http://127.0.0.1:$port FRONT_H2=$FRONT_URL
}

run_front() { # run_front FRONT SCENARIO → appends the score line to $TMP/scores
	local front=$1 s=$2 oport line args=()
	if [ "$front" = portcullis ]; then
		args=()
	else
		oport=$(freeport)
		"start_$front" "$oport"
		args=(--target "$FRONT_URL" --origin-listen "127.0.0.1:$oport" --target-pid "$FRONT_PID")
		[ "$H2FLAG" = 1 ] && args+=(--target-h2 "$FRONT_H2")
	fi
	log "$s · $front"
	if line=$("$BIN" lab run "$s" --json "${args[@]}" 2>"$TMP/$s-$front.stderr" | tail -n 1) && [ -n "$line" ]; then
		echo "$line" | jq -c --arg f "$front" '. + {front: $f}' >>"$TMP/scores"
	else
		log "$s · $front failed (see $TMP/$s-$front.stderr)"; KEEP=1
		jq -nc --arg f "$front" --arg s "$s" '{front: $f, scenario: $s, failed: true}' >>"$TMP/scores"
	fi
	stopall
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=${PORTCULLIS_REV:-$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)}
if [ -n "$TABLE" ]; then
	cp "$TABLE" "$TMP/scores"
	mapfile -t SCEN < <(jq -r .scenario "$TMP/scores" | awk '!seen[$0]++')
	LOAD_BEFORE="see the original run"
else
	: >"$TMP/scores"
	FRONTS=(portcullis nginx haproxy)
	i=0
	for s in "${SCEN[@]}"; do
		for k in 0 1 2; do
			run_front "${FRONTS[$(((i + k) % 3))]}" "$s"
		done
		i=$((i + 1))
	done
fi

# --- table -----------------------------------------------------------------------
fmt() { # jq program for one cell
	jq -r --arg s "$1" --arg f "$2" "select(.scenario == \$s and .front == \$f) | $3" "$TMP/scores" | head -n 1
}
pct='if . == null then "–" else (. * 1000 | round / 10 | tostring) + "%" end'
ms='if . == null then "–" else (. | round | tostring) + " ms" end'
{
	echo "## Attack lab: side by side"
	echo
	echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) at commit \`$COMMIT\` with \`bench/lab.sh${SCEN_ARGS:+ $SCEN_ARGS}\`;"
	echo "load average before: $LOAD_BEFORE (2 shared cores). Each cell is one run; fronts alternate per scenario."
	echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $(haproxy -v | head -n 1 | cut -d' ' -f1-3), wrk, h2load and slowhttptest from Debian."
	echo
	echo "| Scenario | Front | legit served | members served | bot leak | legit p99 during | time to detect | time to mitigate | crowd served | origin peak conc. | front CPU s | POST integrity failures |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for s in "${SCEN[@]}"; do
		for f in portcullis nginx haproxy; do
			if [ "$(fmt "$s" "$f" '.failed // false')" = true ]; then
				echo "| $s | $f | failed | | | | | | | | | |"
				continue
			fi
			echo "| $s | $f | $(fmt "$s" "$f" ".legit_success_rate | $pct") | $(fmt "$s" "$f" ".member_success_rate | $pct") | $(fmt "$s" "$f" ".bot_leak_rate | $pct") | $(fmt "$s" "$f" ".legit_p99_ms.during | $ms") | $(fmt "$s" "$f" ".time_to_detect_ms | $ms") | $(fmt "$s" "$f" ".time_to_mitigate_ms | $ms") | $(fmt "$s" "$f" ".crowd_served_rate | $pct") | $(fmt "$s" "$f" '.origin_peak_concurrency') | $(fmt "$s" "$f" '.shield_cpu_seconds | . * 10 | round / 10') | $(fmt "$s" "$f" '.post_integrity_failures') |"
		done
	done
} >"$TMP/table.md"
cp "$TMP/scores" "$TMP/scores.jsonl"
log "score lines (JSON, one per run): $TMP/scores.jsonl (--keep keeps them)"
cat "$TMP/table.md"

if [ "$WRITE" = 1 ]; then
	python3 - "$ROOT/BENCHMARKS.md" "$TMP/table.md" <<'PY'
import re, sys
path, new = sys.argv[1], open(sys.argv[2]).read().rstrip("\n") + "\n"
text = open(path).read()
pat = re.compile(r"^## Attack lab: side by side\n.*?(?=^## |\Z)", re.S | re.M)
text = pat.sub(lambda m: new + "\n", text) if pat.search(text) else text.rstrip("\n") + "\n\n" + new
open(path, "w").write(text)
PY
	log "wrote BENCHMARKS.md"
fi
