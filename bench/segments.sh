#!/usr/bin/env bash
# Segments on PostgreSQL at scale: a generated workspace of PROFILES people and EVENTS events
# (1,000,000 and 10,000,000 by default), then
#   1. preview of a typical definition (two trait conditions, an event count within 30 days,
#      consent), each variant new to the cache;
#   2. full evaluation into stored membership (createSegment), then re-evaluation;
#   3. real-time membership: delay from an event processed to the segment entry it causes,
#      under a steady ingest load through /v1/batch.
#
#   bash bench/segments.sh
#
# Needs wrk, psql, and the roles .ci/run creates. Knobs: PROFILES, EVENTS, STEADY (90s),
# STEADY_EVENTS_PER_SECOND (2000), WARMUP (10 s between starting the workers and the load, so
# the measured window is the steady state: the workers' start-up refresh of time-dependent
# segments falls before it, the scheduled one a minute later inside it; WARMUP=0 STEADY=20s is
# the earlier protocol, with the start-up refresh inside a short window), BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILES=${PROFILES:-1000000}
EVENTS=${EVENTS:-10000000}
STEADY=${STEADY:-90s}
STEADY_EVENTS_PER_SECOND=${STEADY_EVENTS_PER_SECOND:-2000}
PORT=${PORT:-18082}
NAME=segments
source bench/common.sh
export PASSERELLE_RATE_LIMIT_INGEST_PER_SECOND=10000000 PASSERELLE_RATE_LIMIT_INGEST_BURST=10000000
export PASSERELLE_RATE_LIMIT_IP_PER_SECOND=10000000 PASSERELLE_RATE_LIMIT_IP_BURST=10000000

start_server false
sign_in

echo "== 0. data: $PROFILES profiles, $EVENTS events over 90 days, consents, emails (generated in SQL)"
g0=$(date +%s.%N)
psql "$super_url" -q -v ON_ERROR_STOP=1 <<SQL
SET work_mem = '256MB';
SET synchronous_commit = off;
CREATE UNLOGGED TABLE bench_people AS
  SELECT n, gen_random_uuid() AS id FROM generate_series(1, $PROFILES) n;
CREATE UNIQUE INDEX ON bench_people (n);
INSERT INTO profiles (tenant_id, id, merged_into, traits, first_seen_at, last_seen_at, event_count, revenue,
                      first_channel, devices, search_text, created_at, updated_at)
SELECT '$WORKSPACE', id, NULL,
       jsonb_build_object(
         'country', jsonb_build_object('value', (ARRAY['FR','DE','ES','IT','BE'])[1 + (n / 3) % 5], 'source', 'events', 'at', '2026-01-01T00:00:00Z'),
         'plan', jsonb_build_object('value', (ARRAY['pro','basic','free'])[1 + (n / 17) % 3], 'source', 'events', 'at', '2026-01-01T00:00:00Z'),
         'age', jsonb_build_object('value', 18 + n % 60, 'source', 'events', 'at', '2026-01-01T00:00:00Z')),
       now() - interval '90 days', now(), 10, 0, 'web', '["desktop"]', '', now(), now()
FROM bench_people;
INSERT INTO identities (tenant_id, id, kind, value, profile_id, first_profile_id, source, created_at)
SELECT '$WORKSPACE', gen_random_uuid(), 'email', 'u' || n || '@bench.test', id, id, 'events', now()
FROM bench_people WHERE n % 10 < 7;
INSERT INTO consents (tenant_id, id, profile_id, first_profile_id, purpose, channel, granted, source, recorded_at)
SELECT '$WORKSPACE', gen_random_uuid(), id, id, 'marketing', CASE WHEN n % 2 = 0 THEN 'email' ELSE '*' END,
       (n / 11) % 5 <> 0, 'bench', now()
FROM bench_people WHERE n % 10 < 4;
INSERT INTO events (tenant_id, id, message_id, type, name, status, occurred_at, received_at, source, body, channel,
                    first_profile_id, profile_id, processed_at)
SELECT '$WORKSPACE', gen_random_uuid(), 'bench-' || e.i, 'track', e.name, 'processed', e.at, e.at, 'events',
       CASE WHEN e.name = 'Order Completed' THEN jsonb_build_object('properties', jsonb_build_object('revenue', e.i % 200))
            ELSE '{"properties": {}}'::jsonb END,
       (ARRAY['web','email','app'])[1 + e.i % 3], p.id, p.id, e.at
FROM (SELECT i, 1 + ((i::bigint * 2654435761) % 4294967291) % $PROFILES AS person,
             now() - (i % 7776000) * interval '1 second' AS at,
             CASE WHEN i % 20 < 10 THEN 'Page Viewed' WHEN i % 20 < 15 THEN 'Product Viewed'
                  WHEN i % 20 < 17 THEN 'Added To Cart' WHEN i % 20 < 19 THEN 'Order Completed' ELSE 'Email Opened' END AS name
      FROM generate_series(1, $EVENTS) i) e
JOIN bench_people p ON p.n = e.person;
DROP TABLE bench_people;
VACUUM ANALYZE profiles;
VACUUM ANALYZE identities;
VACUUM ANALYZE consents;
VACUUM ANALYZE events;
SQL
g1=$(date +%s.%N)
echo "generated in $(python3 -c "print(round($g1 - $g0))") s; database $(sql "SELECT pg_size_pretty(pg_database_size(current_database()))")"

# `timed QUERY_JSON`: seconds the GraphQL request took; fails on errors.
timed() {
  local out
  out=$(curl -s -o "$work/answer.json" -w '%{time_total}' http://127.0.0.1:$PORT/graphql \
    -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" -d "$1")
  if grep -q '"errors"' "$work/answer.json"; then cat "$work/answer.json" >&2; exit 1; fi
  echo "$out"
}
median() { python3 -c "import statistics, sys; print(round(statistics.median(float(x) for x in sys.argv[1:]), 3))" "$@"; }
typical() { echo "trait country = \\\"$1\\\" and trait plan = \\\"pro\\\" and performed \\\"Order Completed\\\" count >= 2 within 30 days and consents to marketing on email"; }

echo "== 1. preview (count + 10 profiles) of the typical definition, each variant new to the cache"
echo "   $(typical FR | tr -d '\\')"
times=()
for country in FR DE ES IT BE; do
  times+=("$(timed "{\"query\":\"query(\$w: ID!, \$t: String!) { segmentPreview(workspaceId: \$w, definition: {text: \$t}, sampleSize: 10) { count } }\",\"variables\":{\"w\":\"$WORKSPACE\",\"t\":\"$(typical "$country")\"}}")")
  echo "   $country: ${times[-1]} s, $(python3 -c "import json; print(json.load(open('$work/answer.json'))['data']['segmentPreview']['count'])") people"
done
echo "preview: median $(median "${times[@]}") s over ${#times[@]} variants"
again=$(timed "{\"query\":\"query(\$w: ID!, \$t: String!) { segmentPreview(workspaceId: \$w, definition: {text: \$t}, sampleSize: 10) { count } }\",\"variables\":{\"w\":\"$WORKSPACE\",\"t\":\"$(typical BE)\"}}")
echo "the last preview again, from the cache: $again s"

echo "== 2. full evaluation into membership"
create=$(timed "{\"query\":\"mutation(\$w: ID!, \$t: String!) { createSegment(input: {workspaceId: \$w, name: \\\"Typical\\\", definition: {text: \$t}}) { id size } }\",\"variables\":{\"w\":\"$WORKSPACE\",\"t\":\"$(typical FR)\"}}")
segment=$(python3 -c "import json; print(json.load(open('$work/answer.json'))['data']['createSegment']['id'])")
echo "createSegment (evaluate + store $(python3 -c "import json; print(json.load(open('$work/answer.json'))['data']['createSegment']['size'])") members): $create s"
times=()
for _ in 1 2 3; do
  times+=("$(timed "{\"query\":\"mutation(\$w: ID!, \$id: ID!) { evaluateSegment(workspaceId: \$w, id: \$id) { size } }\",\"variables\":{\"w\":\"$WORKSPACE\",\"id\":\"$segment\"}}")")
done
echo "evaluateSegment (no change): median $(median "${times[@]}") s"

echo "== 3. real-time membership under a steady $STEADY_EVENTS_PER_SECOND events/s (serve with its workers)"
# New visitors who identify as pro enter this segment as their events are processed.
timed "{\"query\":\"mutation(\$w: ID!, \$t: String!) { createSegment(input: {workspaceId: \$w, name: \\\"Pro visitors\\\", definition: {text: \$t}}) { id } }\",\"variables\":{\"w\":\"$WORKSPACE\",\"t\":\"trait plan = \\\"pro\\\" and has email\"}}" >/dev/null
kill $server; wait $server 2>/dev/null || true; server=
start_server true
sleep "${WARMUP:-10}"
BENCH_WRITE_KEY=$(gql "{\"query\":\"mutation { createApiKey(input: {workspaceId: \\\"$WORKSPACE\\\", name: \\\"bench\\\", kind: WRITE, scopes: []}) { secret } }\"}" | field '["data"]["createApiKey"]["secret"]')
export BENCH_WRITE_KEY
mark=$(sql "SELECT now()")
BENCH_DELAY_MS=$((2 * 1000 * 100 / STEADY_EVENTS_PER_SECOND)) \
  wrk -t1 -c2 -d"$STEADY" -s bench/ingest_batch.lua http://127.0.0.1:$PORT/v1/batch | grep -E "Requests/sec"
wait_until_processed $server
sleep 2
# The delay is measured from the processing of the event that made the person enter
# (`processed_at`, stamped when its chunk's results are written, just before the commit)
# and, end to end, from its acceptance (`received_at`).
sql "WITH entries AS (
       SELECT c.at, e.processed_at, e.received_at
       FROM segment_changes c JOIN segments s ON s.tenant_id = c.tenant_id AND s.id = c.segment_id
       CROSS JOIN LATERAL (SELECT e.processed_at, e.received_at FROM events e WHERE e.tenant_id = c.tenant_id
                             AND e.profile_id = c.profile_id AND e.type = 'identify' AND e.processed_at <= c.at
                           ORDER BY e.processed_at DESC LIMIT 1) e
       WHERE s.name = 'Pro visitors' AND c.entered AND c.at >= '$mark')
     SELECT 'entries ' || count(*)
            || '; after processing: p50 ' || round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM at - processed_at)) * 1000)::numeric, 1)
            || ' ms, p99 ' || round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM at - processed_at)) * 1000)::numeric, 1)
            || ' ms; after acceptance: p50 ' || round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM at - received_at)) * 1000)::numeric, 1)
            || ' ms, p99 ' || round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM at - received_at)) * 1000)::numeric, 1) || ' ms'
     FROM entries"
