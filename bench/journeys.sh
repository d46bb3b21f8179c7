#!/usr/bin/env bash
# The journey executor on PostgreSQL, with sends through the webhook adapter to a local nginx:
#   1. backlog: PEOPLE people (50,000) enter a journey at once — holdout 10% → A/B split → send
#      → exit — and WORKERS (2) `passerelle worker` processes run it: journey steps per second,
#      sends delivered per second, CPU split;
#   2. steady: STEADY_PER_SECOND people per second (200) enter a second journey for STEADY
#      seconds (30) — wait 5 s → send → exit — through the whole pipeline (profile change →
#      real-time segment → enrollment): the delay from when the send was due to when it was
#      decided, p50 and p99.
#
#   bash bench/journeys.sh
#
# Needs nginx (apt-get install nginx-light), psql, and the roles .ci/run creates. Knobs:
# PEOPLE, WORKERS, STEADY, STEADY_PER_SECOND, BIN (a binary built elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
PEOPLE=${PEOPLE:-50000}
WORKERS=${WORKERS:-2}
STEADY=${STEADY:-30}
STEADY_PER_SECOND=${STEADY_PER_SECOND:-200}
PORT=${PORT:-18084}
RECEIVER_PORT=${RECEIVER_PORT:-18094}
NAME=journeys
# The receiver is on this machine.
export PASSERELLE_WEBHOOKS_TO_PRIVATE_ADDRESSES=true
source bench/common.sh

echo "== receiver: nginx answering 200 on 127.0.0.1:$RECEIVER_PORT"
mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$RECEIVER_PORT; location / { return 200; } }
}
CONF
nginx -c "$work/nginx.conf" -p "$work/nginx" &
EXTRA_PIDS="$!"

start_server false
sign_in
query() { gql "{\"query\":$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"),\"variables\":$2}"; }
segment_id() {
  query 'mutation($w: ID!, $n: String!, $t: String!) { createSegment(input: {workspaceId: $w, name: $n, definition: {text: $t}}) { id } }' \
    "{\"w\":\"$WORKSPACE\",\"n\":\"$1\",\"t\":\"trait plan = \\\"$2\\\"\"}" | field '["data"]["createSegment"]["id"]'
}
PRO=$(segment_id Pro pro)
STEADY_SEGMENT=$(segment_id Steady steady)
CHANNEL=$(query 'mutation($w: ID!, $u: String!) { createChannel(input: {workspaceId: $w, name: "Hooks", kind: "email", delivery: {adapter: "webhook", url: $u}}) { channel { id } } }' \
  "{\"w\":\"$WORKSPACE\",\"u\":\"http://127.0.0.1:$RECEIVER_PORT/hook\"}" | field '["data"]["createChannel"]["channel"]["id"]')

# People generated in SQL: a profile with traits, an email and consent to marketing on every
# channel. `people N PLAN [feed]`: with `feed`, recorded in the profiles' change feed as the
# processor does, so real-time segments see them.
people() {
  psql "$super_url" -q -v ON_ERROR_STOP=1 <<SQL
SET synchronous_commit = off;
CREATE TEMP TABLE batch AS SELECT gen_random_uuid() AS id, n FROM generate_series(1, $1) n;
INSERT INTO profiles (tenant_id, id, merged_into, traits, first_seen_at, last_seen_at, event_count, revenue,
                      first_channel, devices, search_text, created_at, updated_at)
SELECT '$WORKSPACE', id, NULL,
       jsonb_build_object('plan', jsonb_build_object('value', '$2', 'source', 'events', 'at', '2026-01-01T00:00:00Z'),
                          'first_name', jsonb_build_object('value', 'Ada' || n, 'source', 'events', 'at', '2026-01-01T00:00:00Z')),
       now(), now(), 1, 0, 'web', '[]', '', now(), now()
FROM batch;
INSERT INTO identities (tenant_id, id, kind, value, profile_id, first_profile_id, source, created_at)
SELECT '$WORKSPACE', gen_random_uuid(), 'email', id || '@bench.test', id, id, 'events', now() FROM batch;
INSERT INTO consents (tenant_id, id, profile_id, first_profile_id, purpose, channel, granted, source, recorded_at)
SELECT '$WORKSPACE', gen_random_uuid(), id, id, 'marketing', '*', true, 'bench', now() FROM batch;
$(if [ "${3:-}" = feed ]; then cat <<FEED
INSERT INTO profile_changes (tenant_id, profile_id, change_id, changed_at, topics)
SELECT '$WORKSPACE', id, gen_random_uuid(), now(), '*' FROM batch;
INSERT INTO pending_work (kind, tenant_id, since) VALUES ('profile_changes', '$WORKSPACE', now()) ON CONFLICT DO NOTHING;
FEED
fi)
SQL
}
people 1 free  # someone with a first_name, so the template checks out
CONTENT=$(query 'mutation($w: ID!) { createContent(workspaceId: $w, name: "Hello", template: {variants: [{kind: "email", subject: "Hi {{ profile.first_name }}", body: "Hello {{ profile.first_name }}, from {{ journey.name }}."}]}) { id } }' \
  "{\"w\":\"$WORKSPACE\"}" | field '["data"]["createContent"]["id"]')
journey() {
  local id
  id=$(query 'mutation($w: ID!, $n: String!, $g: JSON!) { createJourney(input: {workspaceId: $w, name: $n, graph: $g}) { id } }' \
    "{\"w\":\"$WORKSPACE\",\"n\":\"$1\",\"g\":$2}" | field '["data"]["createJourney"]["id"]')
  query 'mutation($w: ID!, $id: ID!) { publishJourney(workspaceId: $w, id: $id) { version } }' "{\"w\":\"$WORKSPACE\",\"id\":\"$id\"}" >/dev/null
  echo "$id"
}
BACKLOG=$(journey Backlog "{\"entry\":{\"trigger\":{\"type\":\"segment_entered\",\"segment\":\"$PRO\"},\"next\":\"control\"},\"steps\":[
  {\"id\":\"control\",\"type\":\"holdout\",\"percent\":10,\"next\":\"ab\"},
  {\"id\":\"ab\",\"type\":\"split\",\"variants\":[{\"name\":\"A\",\"weight\":50,\"next\":\"send\"},{\"name\":\"B\",\"weight\":50,\"next\":\"send\"}]},
  {\"id\":\"send\",\"type\":\"send\",\"channel\":\"$CHANNEL\",\"content\":\"$CONTENT\",\"next\":\"end\"},
  {\"id\":\"end\",\"type\":\"exit\"}]}")
STEADY_JOURNEY=$(journey Steady "{\"entry\":{\"trigger\":{\"type\":\"segment_entered\",\"segment\":\"$STEADY_SEGMENT\"},\"next\":\"pause\"},\"steps\":[
  {\"id\":\"pause\",\"type\":\"wait\",\"seconds\":5,\"next\":\"send\"},
  {\"id\":\"send\",\"type\":\"send\",\"channel\":\"$CHANNEL\",\"content\":\"$CONTENT\",\"next\":\"end\"},
  {\"id\":\"end\",\"type\":\"exit\"}]}")

echo "== 1. backlog: $PEOPLE people enter \"Backlog\" at once; $WORKERS workers"
people "$PEOPLE" pro
psql "$super_url" -qc "ANALYZE" >/dev/null
# The segment's entries, through its real-time path, before the workers start.
query 'mutation($w: ID!, $id: ID!) { evaluateSegment(workspaceId: $w, id: $id) { size } }' "{\"w\":\"$WORKSPACE\",\"id\":\"$PRO\"}" >/dev/null
kill $server; wait $server 2>/dev/null || true; server=
pg_cpu() { { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v hz="$(getconf CLK_TCK)" '$2 == "(postgres)" {t += $14 + $15} END {printf "%.1f", t / hz}'; }
cpu0=$(pg_cpu)
t0=$(date +%s.%N)
worker_pids=()
for i in $(seq 1 "$WORKERS"); do
  PASSERELLE_LOG=warn "$BIN" worker >"$work/worker-$i.log" 2>&1 &
  worker_pids+=($!)
done
EXTRA_PIDS="$EXTRA_PIDS ${worker_pids[*]}"
stepped=""
while true; do
  state=$(sql "SELECT (SELECT count(*) FROM journey_enrollments WHERE journey_id = '$BACKLOG') || ' ' ||
                      (SELECT count(*) FROM journey_enrollments WHERE journey_id = '$BACKLOG' AND status = 'active') || ' ' ||
                      (SELECT count(*) FROM outbox WHERE journey_id = '$BACKLOG' AND status <> 'sent')")
  read -r enrolled active unsent <<<"$state"
  if [ -z "$stepped" ] && [ "$enrolled" -ge "$PEOPLE" ] && [ "$active" -eq 0 ]; then stepped=$(date +%s.%N); fi
  if [ -n "$stepped" ] && [ "$unsent" -eq 0 ]; then break; fi
  for pid in "${worker_pids[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "a worker stopped" >&2; cat "$work"/worker-*.log >&2; exit 1; }; done
  sleep 0.2
done
t1=$(date +%s.%N)
cpu1=$(pg_cpu)
steps=$(sql "SELECT sum(sequence) FROM journey_enrollments WHERE journey_id = '$BACKLOG'")
sends=$(sql "SELECT count(*) FROM outbox WHERE journey_id = '$BACKLOG' AND status = 'sent'")
workers_cpu=$(for pid in "${worker_pids[@]}"; do awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f\n", ($14 + $15) / hz}' "/proc/$pid/stat"; done | paste -sd+ | bc)
python3 - "$t0" "$stepped" "$t1" "$steps" "$sends" <<'PY'
import sys
t0, stepped, t1, steps, sends = map(float, sys.argv[1:])
print(f"journey steps: {int(steps)} in {stepped - t0:.2f} s = {steps / (stepped - t0):,.0f} steps/s")
print(f"sends delivered: {int(sends)} in {t1 - t0:.2f} s = {sends / (t1 - t0):,.0f} sends/s (webhook, signed, to nginx)")
PY
echo "CPU: workers $workers_cpu s, PostgreSQL $(python3 -c "print(round($cpu1 - $cpu0, 1))") s"

echo "== 2. steady: $STEADY_PER_SECOND people/s enter \"Steady\" (wait 5 s, then send) for $STEADY s"
mark=$(sql "SELECT now()")
per_tick=$((STEADY_PER_SECOND / 10))
end=$(( $(date +%s) + STEADY ))
while [ "$(date +%s)" -lt "$end" ]; do
  people "$per_tick" steady feed
  sleep 0.1
done
sleep 8
while [ -n "$(sql "SELECT 1 FROM journey_enrollments WHERE journey_id = '$STEADY_JOURNEY' AND status = 'active' LIMIT 1")" ]; do sleep 0.5; done
# Due: the wait's end (entry + its own delay + 5 s), so this is an upper bound of the delay of
# the send step; end to end: from the profile's change.
sql "WITH d AS (
       SELECT extract(epoch FROM t.at - e.entered_at - interval '5 seconds') AS due_delay,
              extract(epoch FROM t.at - p.created_at - interval '5 seconds') AS end_to_end
       FROM journey_enrollments e
       JOIN touchpoints t ON t.tenant_id = e.tenant_id AND t.journey_id = e.journey_id AND t.profile_id = e.profile_id AND t.kind = 'send'
       JOIN profiles p ON p.tenant_id = e.tenant_id AND p.id = e.profile_id
       WHERE e.journey_id = '$STEADY_JOURNEY' AND e.entered_at >= '$mark')
     SELECT count(*) || ' sends; due → decided: p50 ' || round((percentile_cont(0.5) WITHIN GROUP (ORDER BY due_delay) * 1000)::numeric)
            || ' ms, p99 ' || round((percentile_cont(0.99) WITHIN GROUP (ORDER BY due_delay) * 1000)::numeric)
            || ' ms; profile changed → decided (minus the wait): p50 ' || round((percentile_cont(0.5) WITHIN GROUP (ORDER BY end_to_end) * 1000)::numeric)
            || ' ms, p99 ' || round((percentile_cont(0.99) WITHIN GROUP (ORDER BY end_to_end) * 1000)::numeric) || ' ms'
     FROM d"
