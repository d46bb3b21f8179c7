# Shared by the PostgreSQL benchmarks (source it after setting PORT and NAME): builds the
# release binary, creates a throwaway database migrated by the owner role and used by the app
# role, bootstraps an agency, and offers helpers. The caller starts the server with
# `start_server WORKERS` and then calls `sign_in` for TOKEN and WORKSPACE.
set -euo pipefail
ADMIN=${PASSERELLE_TEST_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
# BIN=path runs a binary built elsewhere (an A/B comparison of two commits in one session).
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p passerelle
  BIN=$CARGO_TARGET_DIR/release/passerelle
fi

db=bench_${NAME}_$$
work=$(mktemp -d)
cleanup() {
  # shellcheck disable=SC2086 # EXTRA_PIDS is a list.
  kill "${server:-}" "${worker:-}" "${analyzer:-}" ${EXTRA_PIDS:-} 2>/dev/null || true
  wait 2>/dev/null || true
  # KEEP_DB=1 keeps the database for a look afterwards (drop it yourself).
  if [ -n "${KEEP_DB:-}" ]; then echo "kept database $db" >&2; else
    psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
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
# does what autovacuum's analyze does in production, by its default rule (a table is analyzed
# once 50 rows + 10% of its rows have changed since the last analyze), checked every 10 s
# (autovacuum_naptime, 1 min by default, is often lowered on busy databases).
analyze_while_running() {
  if [ "$(sql "SHOW autovacuum")" = off ]; then
    (while true; do
      for table in $(sql "SELECT relname FROM pg_stat_user_tables WHERE n_mod_since_analyze > 50 + 0.1 * n_live_tup"); do
        sql "ANALYZE $table" >/dev/null 2>&1 || true
      done
      sleep 10
    done) &
    analyzer=$!
    echo "(autovacuum is off here: analyzing as autovacuum would, checked every 10 s)"
  fi
}

# `wait_until_processed PID`: waits until no event is pending, polling every 0.5 s with a query
# the partial index on pending events answers (a count(*) here took a fifth of the database's
# time), and fails if the process PID stopped.
wait_until_processed() {
  while [ -n "$(sql "SELECT 1 FROM events WHERE status = 'pending' LIMIT 1")" ]; do
    kill -0 "$1" 2>/dev/null || { echo "the worker stopped" >&2; cat "$work/worker.log" "$work/server.log" >&2 2>/dev/null; exit 1; }
    sleep 0.5
  done
}
