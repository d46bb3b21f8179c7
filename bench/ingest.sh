#!/usr/bin/env bash
# Ingestion on PostgreSQL: events accepted and durable through POST /v1/batch (100 events per
# request), beside a raw COPY of the same rows into a copy of the events table in the same run;
# then processing (identities resolved, profiles updated) and its delay from acceptance.
#
#   bash bench/ingest.sh
#
# Needs wrk (apt-get install wrk), psql, and the PostgreSQL roles .ci/run creates
# (passerelle_owner, passerelle_app). Knobs: DURATION (20s), CONNECTIONS (32), STEADY (20s),
# STEADY_EVENTS_PER_SECOND (5000: the paced load of step 4), WORKSPACES (1: the events are
# spread over this many workspaces, which the worker processes side by side), WORKER_LOG (a log filter for the
# worker of step 3, e.g. warn,profiles=debug for per-chunk timings) and KEEP_WORKER_LOG (a path
# to keep its log).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
STEADY=${STEADY:-20s}
STEADY_EVENTS_PER_SECOND=${STEADY_EVENTS_PER_SECOND:-5000}
WORKSPACES=${WORKSPACES:-1}
PORT=${PORT:-18081}
NAME=ingest
source bench/common.sh
export PASSERELLE_RATE_LIMIT_INGEST_PER_SECOND=10000000 PASSERELLE_RATE_LIMIT_INGEST_BURST=10000000
export PASSERELLE_RATE_LIMIT_IP_PER_SECOND=10000000 PASSERELLE_RATE_LIMIT_IP_BURST=10000000

start_server false
sign_in
write_key() {
  gql "{\"query\":\"mutation { createApiKey(input: {workspaceId: \\\"$WORKSPACE\\\", name: \\\"bench\\\", kind: WRITE, scopes: []}) { secret } }\"}" \
    | field '["data"]["createApiKey"]["secret"]'
}
BENCH_WRITE_KEY=$(write_key)
for _ in $(seq 2 "$WORKSPACES"); do
  WORKSPACE=$(gql '{"query":"mutation { createWorkspace(input: {name: \"Bench\"}) { id } }"}' | field '["data"]["createWorkspace"]["id"]')
  BENCH_WRITE_KEY="$BENCH_WRITE_KEY,$(write_key)"
done
export BENCH_WRITE_KEY

echo "== 1. acceptance: POST /v1/batch, 100 events per request, workers off"
wrk -t1 -c4 -d2s -s bench/ingest_batch.lua http://127.0.0.1:$PORT/v1/batch >/dev/null  # warm-up
before=$(sql "SELECT count(*) FROM events")
t0=$(date +%s.%N)
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/ingest_batch.lua http://127.0.0.1:$PORT/v1/batch | tee "$work/wrk.txt"
t1=$(date +%s.%N)
after=$(sql "SELECT count(*) FROM events")
accepted=$((after - before))
grep -q "Non-2xx" "$work/wrk.txt" && { echo "some requests failed" >&2; exit 1; }
ingest_rate=$(python3 -c "print(round($accepted / ($t1 - $t0)))")
echo "accepted $accepted events in $(python3 -c "print(round($t1 - $t0, 1))") s: $ingest_rate events/s"

echo "== 2. baseline: COPY of the same rows into a copy of the events table (same indexes)"
sql "CREATE TABLE events_copy (LIKE events INCLUDING ALL)"
psql "$super_url" -qc "\\copy (SELECT * FROM events) TO '$work/events.copy'"
c0=$(date +%s.%N)
psql "$super_url" -qc "\\copy events_copy FROM '$work/events.copy'"
c1=$(date +%s.%N)
copy_rate=$(python3 -c "print(round($after / ($c1 - $c0)))")
echo "COPY of $after rows: $copy_rate rows/s; acceptance/COPY = $(python3 -c "print(round($ingest_rate / $copy_rate, 2))")"
sql "DROP TABLE events_copy"

analyze_while_running

echo "== 3. processing the backlog of $WORKSPACES workspace(s): passerelle worker"
kill $server; wait $server 2>/dev/null || true; server=
pending=$(sql "SELECT count(*) FROM events WHERE status = 'pending'")
# CPU seconds (user + system) of every PostgreSQL process, to split the time between the
# worker and the database.
pg_cpu() { { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v hz="$(getconf CLK_TCK)" '$2 == "(postgres)" {t += $14 + $15} END {printf "%.1f", t / hz}'; }
# WAL written and checkpoints during the processing, cluster-wide (nothing else runs here).
wal_stats() { sql "SELECT w.wal_bytes || ' ' || w.wal_fpi || ' ' || (b.checkpoints_timed + b.checkpoints_req) FROM pg_stat_wal w, pg_stat_bgwriter b"; }
read -r wal0 fpi0 ckpt0 <<<"$(wal_stats)"
# STATEMENTS=1 lists the statements of step 3 by database time (needs pg_stat_statements in
# shared_preload_libraries and the extension in the admin database).
if [ -n "${STATEMENTS:-}" ]; then psql "$ADMIN" -qAtc "SELECT pg_stat_statements_reset()" >/dev/null; fi
cpu0=$(pg_cpu)
p0=$(date +%s.%N)
PASSERELLE_LOG=${WORKER_LOG:-warn} "$BIN" worker >"$work/worker.log" 2>&1 &
worker=$!
wait_until_processed $worker
p1=$(date +%s.%N)
worker_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$worker/stat")
cpu1=$(pg_cpu)
read -r wal1 fpi1 ckpt1 <<<"$(wal_stats)"
kill $worker; wait $worker 2>/dev/null || true; worker=
if [ -n "${KEEP_WORKER_LOG:-}" ]; then cp "$work/worker.log" "$KEEP_WORKER_LOG"; fi
echo "processed $pending events in $(python3 -c "print(round($p1 - $p0, 1))") s: $(python3 -c "print(round($pending / ($p1 - $p0)))") events/s"
echo "CPU: worker $worker_cpu s, PostgreSQL $(python3 -c "print(round($cpu1 - $cpu0, 1))") s"
echo "WAL: $(python3 -c "print(round(($wal1 - $wal0) / $pending))") bytes and $(python3 -c "print(round(($fpi1 - $fpi0) / $pending, 2))") full-page images per event, $((ckpt1 - ckpt0)) checkpoints"
if [ -n "${STATEMENTS:-}" ]; then
  psql "$ADMIN" -qc "SELECT round(total_exec_time) AS ms, calls, rows, round((100 * (shared_blks_dirtied + shared_blks_written))::numeric / greatest(rows, 1), 1) AS dirtied_per_100_rows, round(wal_bytes / greatest(rows, 1)) AS wal_per_row, left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$db') ORDER BY total_exec_time DESC LIMIT 12"
fi
echo "profiles: $(sql "SELECT count(*) FROM profiles WHERE merged_into IS NULL"), merges: $(sql "SELECT count(*) FROM profile_merges")"

echo "== 4. delay from acceptance to processed under a steady $STEADY_EVENTS_PER_SECOND events/s (serve with its workers)"
start_server true
mark=$(sql "SELECT now()")
# Two connections, each pausing so that together they send the requested rate.
BENCH_DELAY_MS=$((2 * 1000 * 100 / STEADY_EVENTS_PER_SECOND)) \
  wrk -t1 -c2 -d"$STEADY" -s bench/ingest_batch.lua http://127.0.0.1:$PORT/v1/batch | grep -E "Requests/sec"
wait_until_processed $server
sql "SELECT 'events ' || count(*) || ', p50 ' || round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at)) * 1000)::numeric, 1)
     || ' ms, p99 ' || round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at)) * 1000)::numeric, 1) || ' ms'
     FROM events WHERE received_at >= '$mark'"
