#!/usr/bin/env bash
# CSV import on PostgreSQL: a generated CRM file of ROWS rows (1,000,000 by default) streamed
# through PUT /imports/{workspace}/{import}, beside COPYs of the same data (the CSV into a plain
# table, the stored rows into a copy of the events table) in the same run; the server's peak
# memory before and after (the file must stream, not sit in memory); then the worker linking
# the rows to profiles.
#
#   bash bench/import.sh
#
# Needs psql, python3 and the PostgreSQL roles .ci/run creates (passerelle_owner,
# passerelle_app). Knobs: ROWS (1000000); WORKER_LOG (a log filter for the worker, e.g.
# warn,profiles=debug for the per-chunk timings) and KEEP_WORKER_LOG (a path to keep its log).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
PORT=${PORT:-18082}
NAME=import
source bench/common.sh

echo "== generating $ROWS CRM rows"
python3 - "$ROWS" "$work/crm.csv" <<'PY'
import random, sys
rows, path = int(sys.argv[1]), sys.argv[2]
random.seed(7)
first = ["Ada", "Grace", "Alan", "Marie", "Emmy", "Hedy", "Katherine", "Edsger", "Barbara", "Donald"]
last = ["Lovelace", "Hopper", "Turing", "Curie", "Noether", "Lamarr", "Johnson", "Dijkstra", "Liskov", "Knuth"]
cities = [("Paris", "75002"), ("Lyon", "69001"), ("Lille", "59000"), ("Nantes", "44000"), ("Nice", "06000")]
with open(path, "w") as f:
    f.write("customer_id,email,phone,first_name,last_name,city,zip,birthday,plan,lifetime_value\n")
    for i in range(rows):
        city, zip_code = random.choice(cities)
        f.write(f"C{i:08d},person{i}@example.com,+3361{i:07d},{random.choice(first)},{random.choice(last)},"
                f"{city},{zip_code},19{random.randint(40, 99)}-0{random.randint(1, 9)}-1{random.randint(0, 9)},"
                f"{random.choice(['free', 'pro', 'gold'])},{random.randint(0, 5000)}.{random.randint(0, 99):02d}\n")
PY
size=$(stat -c %s "$work/crm.csv")
echo "file: $((size / 1024 / 1024)) MiB"

start_server false
sign_in
upload=$(gql "{\"query\":\"mutation { createImport(workspaceId: \\\"$WORKSPACE\\\", input: {name: \\\"crm\\\", kind: CRM}) { uploadPath } }\"}" | field '["data"]["createImport"]["uploadPath"]')
rss() { awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$server/status"; }
echo "server peak memory before the upload: $(rss) MiB"

echo "== 1. upload: PUT $upload (workers off)"
t0=$(date +%s.%N)
curl -s -X PUT "http://127.0.0.1:$PORT$upload" -H "authorization: Bearer $TOKEN" -H 'content-type: text/csv' \
  --data-binary @"$work/crm.csv" >"$work/summary.json"
t1=$(date +%s.%N)
python3 -c "import json; s = json.load(open('$work/summary.json')); print({k: s[k] for k in ('status', 'rowsRead', 'rowsImported', 'rowsRejected')})"
upload_rate=$(python3 -c "print(round($ROWS / ($t1 - $t0)))")
echo "uploaded $ROWS rows in $(python3 -c "print(round($t1 - $t0, 1))") s: $upload_rate rows/s"
echo "server peak memory after the upload: $(rss) MiB (the file is $((size / 1024 / 1024)) MiB)"

echo "== 2. baselines: COPY of the file into a plain table, and of the stored rows into a copy of the events table"
sql "CREATE TABLE crm_copy (customer_id text, email text, phone text, first_name text, last_name text, city text, zip text, birthday date, plan text, lifetime_value numeric)"
c0=$(date +%s.%N)
psql "$super_url" -qc "\\copy crm_copy FROM '$work/crm.csv' WITH (FORMAT csv, HEADER true)"
c1=$(date +%s.%N)
sql "DROP TABLE crm_copy"
echo "COPY of the CSV into a plain table: $(python3 -c "print(round($ROWS / ($c1 - $c0)))") rows/s"
sql "CREATE TABLE events_copy (LIKE events INCLUDING ALL)"
psql "$super_url" -qc "\\copy (SELECT * FROM events) TO '$work/events.copy'"
c0=$(date +%s.%N)
psql "$super_url" -qc "\\copy events_copy FROM '$work/events.copy'"
c1=$(date +%s.%N)
sql "DROP TABLE events_copy"
copy_rate=$(python3 -c "print(round($ROWS / ($c1 - $c0)))")
echo "COPY of the stored rows into a copy of the events table: $copy_rate rows/s; upload/COPY = $(python3 -c "print(round($upload_rate / $copy_rate, 2))")"

echo "== 3. linking the rows to profiles: passerelle worker"
kill $server; wait $server 2>/dev/null || true; server=
analyze_while_running
p0=$(date +%s.%N)
PASSERELLE_LOG=${WORKER_LOG:-warn} "$BIN" worker >"$work/worker.log" 2>&1 &
worker=$!
while [ "$(sql "SELECT status FROM import_jobs")" != completed ]; do
  kill -0 $worker 2>/dev/null || { echo "the worker stopped" >&2; cat "$work/worker.log" >&2; exit 1; }
  sleep 1
done
p1=$(date +%s.%N)
echo "processed $ROWS rows in $(python3 -c "print(round($p1 - $p0, 1))") s: $(python3 -c "print(round($ROWS / ($p1 - $p0)))") rows/s"
echo "profiles: $(sql "SELECT count(*) FROM profiles WHERE merged_into IS NULL"), identities: $(sql "SELECT count(*) FROM identities")"
if [ -n "${KEEP_WORKER_LOG:-}" ]; then cp "$work/worker.log" "$KEEP_WORKER_LOG"; fi

