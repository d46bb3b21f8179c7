#!/usr/bin/env bash
# The attribution report on PostgreSQL at scale: a workspace with PROFILES people (default 1M)
# and EVENTS events (default 10M: a fifth of them touches with UTM parameters, 3% orders), plus
# TOUCHPOINTS campaign sends (default 1M), over 90 days. Times `attribution` through GraphQL for
# the last 30 days with every model (refresh: true, so nothing comes from the cache), RUNS times
# (default 5), and prints the median; as baselines in the same run, the cached answer and the
# bare SQL scan of the rows the report reads.
#
#   bash bench/measurement.sh                 # PROFILES=100000 EVENTS=1000000 for a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-18093} NAME=measurement
PROFILES=${PROFILES:-1000000} EVENTS=${EVENTS:-10000000} TOUCHPOINTS=${TOUCHPOINTS:-1000000} RUNS=${RUNS:-5}
# shellcheck source=bench/common.sh
source bench/common.sh
# The service logs how long each report spent reading and in all.
export PASSERELLE_LOG=warn,measurement=info
start_server false
sign_in

conversion=$(gql '{"query":"mutation($w: ID!) { createConversion(workspaceId: $w, input: {name: \"Orders\", eventName: \"Order Completed\", valueProperty: \"total\", currency: \"EUR\"}) { id } }","variables":{"w":"'"$WORKSPACE"'"}}' | field '["data"]["createConversion"]["id"]')

echo "filling: $PROFILES profiles, $EVENTS events, $TOUCHPOINTS campaign touchpoints"
started=$(date +%s)
sql "INSERT INTO profiles (tenant_id, id, traits, first_seen_at, last_seen_at, event_count, revenue, first_channel,
       devices, search_text, created_at, updated_at)
     SELECT '$WORKSPACE', md5('p' || i)::uuid, '{}', now() - interval '90 days' + (i % 90) * interval '1 day', now(),
       10, 0, 'web', '[]', '', now(), now()
     FROM generate_series(1, $PROFILES) i" >/dev/null
# k spreads events pseudo-randomly: 0-19 touches (8 marketing contexts), 20-22 orders, else plain pages.
sql "INSERT INTO events (tenant_id, id, message_id, type, name, status, occurred_at, received_at, source, body,
       channel, first_profile_id, profile_id, processed_at, touch, utm_source, utm_medium, utm_campaign, device)
     SELECT '$WORKSPACE', md5('e' || i)::uuid, 'm' || i,
       CASE WHEN k BETWEEN 20 AND 22 THEN 'track' ELSE 'page' END,
       CASE WHEN k BETWEEN 20 AND 22 THEN 'Order Completed' ELSE 'Home' END,
       'processed', at, at, 'bench',
       CASE WHEN k BETWEEN 20 AND 22 THEN jsonb_build_object('properties', jsonb_build_object('total', i % 200 + 1))
            ELSE '{}'::jsonb END,
       'web', p, p, at, k < 20,
       CASE WHEN k < 20 THEN (ARRAY['google','bing','facebook','newsletter','criteo','instagram','awin','(direct)'])[k % 8 + 1] END,
       CASE WHEN k < 20 THEN (ARRAY['cpc','cpc','paid_social','email','display','social','affiliate','(none)'])[k % 8 + 1] END,
       CASE WHEN k < 20 THEN 'campaign-' || i % 25 END,
       (ARRAY['ios','android','web'])[i % 3 + 1]
     FROM (SELECT i, abs(hashtext('k' || i)) % 100 AS k, md5('p' || (i % $PROFILES + 1))::uuid AS p,
             now() - (i % 7776000) * interval '1 second' AS at
           FROM generate_series(1, $EVENTS) i) generated" >/dev/null
sql "INSERT INTO touchpoints (tenant_id, id, profile_id, kind, channel, at)
     SELECT '$WORKSPACE', md5('t' || i)::uuid, md5('p' || ((i::bigint * 31) % $PROFILES + 1))::uuid,
       'send', (ARRAY['email','sms','push'])[i % 3 + 1], now() - (i % 7776000) * interval '1 second'
     FROM generate_series(1, $TOUCHPOINTS) i" >/dev/null
# What autovacuum does after bulk inserts (insert-triggered vacuum, PostgreSQL 13+); autovacuum
# is off on these machines. It sets the visibility map that lets the touches come from the index.
sql "VACUUM ANALYZE" >/dev/null
echo "filled in $(( $(date +%s) - started )) s"

from=$(date -u -d '30 days ago' +%Y-%m-%dT%H:%M:%SZ) to=$(date -u +%Y-%m-%dT%H:%M:%SZ)
report() {
  curl -s -o "$work/report.json" -w '%{time_total}\n' http://127.0.0.1:$PORT/graphql -H 'content-type: application/json' \
    -H "authorization: Bearer $TOKEN" \
    -d '{"query":"query($w: ID!, $i: AttributionInput!) { attribution(workspaceId: $w, input: $i) { conversions touches convertingPaths nonConvertingPaths cached models { model rows { key share } } } }","variables":{"w":"'"$WORKSPACE"'","i":{"conversionId":"'"$conversion"'","from":"'"$from"'","to":"'"$to"'","refresh":'"$1"'}}}'
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
computed=$(for _ in $(seq 1 "$RUNS"); do report true; done | median)
python3 - "$work/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
if "errors" in report:
    sys.exit(f"the report failed: {report['errors']}")
data = report["data"]["attribution"]
print(f"report: {data['conversions']} conversions, {data['touches']} touches on "
      f"{data['convertingPaths']} converting and {data['nonConvertingPaths']} non-converting paths, "
      f"{len(data['models'])} models")
markov = next(m for m in data["models"] if m["model"] == "markov_1")
print("markov_1 shares:", ", ".join(f"{r['key']} {r['share']:.3f}" for r in markov["rows"]))
PY
cached=$(for _ in $(seq 1 "$RUNS"); do report false; done | median)
scan=$(for _ in $(seq 1 "$RUNS"); do
  psql "$super_url" -qAt -c '\timing on' -c "SELECT count(*) FROM (
      SELECT profile_id, occurred_at, channel, utm_source, utm_medium, utm_campaign, referrer_host, device FROM events
      WHERE tenant_id = '$WORKSPACE' AND touch AND occurred_at >= '$from'::timestamptz - interval '30 days'
        AND occurred_at < '$to' UNION ALL
      SELECT profile_id, occurred_at, (body->'properties')::text, NULL, NULL, NULL, NULL, NULL FROM events
      WHERE tenant_id = '$WORKSPACE' AND name = 'Order Completed' AND occurred_at >= '$from'::timestamptz - interval '30 days'
        AND occurred_at < '$to' AND profile_id IS NOT NULL) rows" | awk '/^Time:/ {print $2 / 1000}'
done | median)
echo "attribution report, every model, computed (median of $RUNS): ${computed} s"
echo "the same report from the cache (median of $RUNS): ${cached} s"
echo "baseline: PostgreSQL alone reading the same rows (median of $RUNS): ${scan} s"
python3 -c "print(f'report / bare scan: {float(\"$computed\") / float(\"$scan\"):.1f}x')"
python3 - "$work/server.log" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if "attribution report computed" in line]
fields = [run.get("fields", run) for run in runs]
if fields:
    loaded = statistics.median(int(f["loaded_ms"]) for f in fields)
    total = statistics.median(int(f["total_ms"]) for f in fields)
    print(f"inside the service (median of {len(fields)}): reading {loaded} ms, in all {total} ms")
PY
