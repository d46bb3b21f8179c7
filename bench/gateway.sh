#!/usr/bin/env bash
# Throughput and latency of an authenticated GraphQL `me` query, beside the plain actix-web
# handler `GET /livez` of the same server, measured in alternating rounds of one run.
#
#   bash bench/gateway.sh                      # embedded default (SQLite, in-process cache)
#   BENCH_DATABASE_URL=postgres://… BENCH_REDIS_URL=redis://… bash bench/gateway.sh
#
# Needs wrk (apt-get install wrk). Knobs: ROUNDS (5), DURATION (10s), CONNECTIONS (32).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18080}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
cargo build --release -q -p passerelle
BIN=$CARGO_TARGET_DIR/release/passerelle

work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
export PASSERELLE_DATA_DIR=$work/data
export PASSERELLE_LOG=warn
# The limiter stays on (its cost is part of the path) but high enough never to refuse.
export PASSERELLE_RATE_LIMIT_IP_PER_SECOND=10000000 PASSERELLE_RATE_LIMIT_IP_BURST=10000000
export PASSERELLE_RATE_LIMIT_KEY_PER_SECOND=10000000 PASSERELLE_RATE_LIMIT_KEY_BURST=10000000
if [ -n "${BENCH_DATABASE_URL:-}" ]; then export DATABASE_URL=$BENCH_DATABASE_URL; fi
if [ -n "${BENCH_REDIS_URL:-}" ]; then export REDIS_URL=$BENCH_REDIS_URL; export PASSERELLE_CACHE_PREFIX=bench-$$; fi

email="bench-$$-$RANDOM@bench.test"
echo 'benchmark passphrase 123' | "$BIN" bootstrap --agency Bench --email "$email" --password-stdin >/dev/null 2>&1
"$BIN" serve --listen 127.0.0.1:$PORT >/dev/null 2>&1 &
server=$!
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:$PORT/livez >/dev/null && break; sleep 0.2; done
export BENCH_TOKEN=$(curl -s http://127.0.0.1:$PORT/graphql -H 'content-type: application/json' \
  -d "{\"query\":\"mutation { login(email: \\\"$email\\\", password: \\\"benchmark passphrase 123\\\") { accessToken } }\"}" \
  | sed -E 's/.*"accessToken":"([^"]+)".*/\1/')
check=$(curl -s http://127.0.0.1:$PORT/graphql -H 'content-type: application/json' -H "authorization: Bearer $BENCH_TOKEN" \
  -d '{"query":"{ me { email } }"}')
case "$check" in *"$email"*) ;; *) echo "the me query does not answer: $check" >&2; exit 1 ;; esac

run() { wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" 2>&1; }
results=$work/results
: > "$results"
wrk -t1 -c"$CONNECTIONS" -d2s http://127.0.0.1:$PORT/livez >/dev/null  # warm-up
for round in $(seq 1 "$ROUNDS"); do
  run http://127.0.0.1:$PORT/livez | sed "s/^/plain $round /" >> "$results"
  run -s bench/me_query.lua http://127.0.0.1:$PORT/graphql | sed "s/^/me $round /" >> "$results"
done
python3 - "$results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kind, rnd, rest = line.split(" ", 2)
    r = rows.setdefault(kind, {}).setdefault(rnd, {})
    if m := re.match(r"Requests/sec:\s+([\d.]+)", rest.strip()): r["rps"] = float(m.group(1))
    if m := re.match(r"(50|99)%\s+([\d.]+)(us|ms|s)", rest.strip()):
        r["p" + m.group(1)] = float(m.group(2)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(3)]
    if "Non-2xx" in rest or "Socket errors" in rest: r["errors"] = rest.strip()
for kind in rows:
    for rnd, r in rows[kind].items():
        if "errors" in r: print(f"warning: {kind} round {rnd}: {r['errors']}")
med = {k: {f: statistics.median(r[f] for r in v.values()) for f in ("rps", "p50", "p99")} for k, v in rows.items()}
print(f"{'endpoint':<28}{'req/s (median)':>16}{'p50 ms':>10}{'p99 ms':>10}")
for kind, label in (("plain", "GET /livez (plain actix)"), ("me", "POST /graphql me (auth)")):
    m = med[kind]
    print(f"{label:<28}{m['rps']:>16.0f}{m['p50']:>10.2f}{m['p99']:>10.2f}")
print(f"ratio me/plain throughput: {med['me']['rps'] / med['plain']['rps']:.2f} (target >= 0.30)")
print("per-round req/s:", {k: [round(r['rps']) for r in v.values()] for k, v in rows.items()})
PY
