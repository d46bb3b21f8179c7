# Shared by the PostgreSQL benchmarks (source it after setting PORT and NAME): builds the
# release binary, creates a throwaway database migrated by the owner role and used by the app
# role, bootstraps an agency, and offers helpers. The caller starts the server with
# `start_server WORKERS` and then calls `sign_in` for TOKEN and WORKSPACE.
set -euo pipefail
ADMIN=${PASSERELLE_TEST_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
cargo build --release -q -p passerelle
BIN=$CARGO_TARGET_DIR/release/passerelle

db=bench_${NAME}_$$
work=$(mktemp -d)
cleanup() {
  kill "${server:-}" "${worker:-}" "${analyzer:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql "$ADMIN" -qc "CREATE DATABASE $db OWNER passerelle_owner" >/dev/null
export DATABASE_URL="postgres://passerelle_app:passerelle@127.0.0.1:5432/$db"
export PASSERELLE_MIGRATION_DATABASE_URL="postgres://passerelle_owner:passerelle@127.0.0.1:5432/$db"
export PASSERELLE_DATA_DIR=$work/data PASSERELLE_LOG=warn
# Measurements read as the superuser: row-level security (forced even for the table owner)
# would hide every tenant's rows from a session without a tenant.
super_url="${ADMIN%/*}/$db"
sql() { psql "$super_url" -qAtc "$1"; }

email="bench-$$@bench.test"
echo 'benchmark passphrase 123' | "$BIN" bootstrap --agency Bench --email "$email" --password-stdin >/dev/null

# `start_server true|false`: `serve` with or without its in-process workers.
start_server() {
  PASSERELLE_WORKERS=$1 "$BIN" serve --listen 127.0.0.1:$PORT >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 50); do curl -sf http://127.0.0.1:$PORT/livez >/dev/null && return; sleep 0.2; done
  echo "the server did not start" >&2; cat "$work/server.log" >&2; exit 1
}
gql() { curl -s http://127.0.0.1:$PORT/graphql -H 'content-type: application/json' ${TOKEN:+-H "authorization: Bearer $TOKEN"} -d "$1"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
sign_in() {
  TOKEN=$(gql "{\"query\":\"mutation { login(email: \\\"$email\\\", password: \\\"benchmark passphrase 123\\\") { accessToken } }\"}" | field '["data"]["login"]["accessToken"]')
  WORKSPACE=$(gql '{"query":"mutation { createWorkspace(input: {name: \"Bench\"}) { id } }"}' | field '["data"]["createWorkspace"]["id"]')
}

# PostgreSQL on these machines runs with autovacuum off, so the planner would keep the
# statistics of empty tables while they fill, and pick sequential scans. `analyze_while_running`
# does what autovacuum's analyze would do in production, every few seconds.
analyze_while_running() {
  if [ "$(sql "SHOW autovacuum")" = off ]; then
    (while true; do sql "ANALYZE events; ANALYZE identities; ANALYZE profiles" >/dev/null 2>&1; sleep 5; done) &
    analyzer=$!
    echo "(autovacuum is off here: analyzing every 5 s)"
  fi
}
