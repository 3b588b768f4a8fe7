#!/usr/bin/env bash
# Dashboard overview at scale: seeds 1,000,000 subscribers, ~1.5 million subscriber events
# and 10,000,000 deliveries over 90 days, starts `paperboy serve`, signs in and times
# GET /admin (after one warm-up request that fills the daily rollups).
#
#   bash bench/admin_overview.sh [SUBSCRIBERS] [DELIVERIES]
set -euo pipefail
cd "$(dirname "$0")/.."

SUBSCRIBERS=${1:-1000000}
DELIVERIES=${2:-10000000}
PG=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
DB=paperboy_bench_admin
PORT=25291
WORK=$(mktemp -d)

cargo build --release --quiet
BIN=target/release/paperboy
cleanup() {
  [ -n "${APP_PID:-}" ] && kill "$APP_PID" 2>/dev/null || true
  [ -n "${KEEP_DB:-}" ] || psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
DATABASE_URL="$PG/$DB" RUST_LOG=warn "$BIN" migrate >/dev/null
echo "seeding $SUBSCRIBERS subscribers and $DELIVERIES deliveries..."
start=$(date +%s)
# ON_ERROR_STOP: a failed statement ends the run (exit 1) instead of timing a half-empty database.
if ! psql "$PG/$DB" -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO subscribers (email, email_key, status, topics, created_at, confirmed_at)
SELECT 'r' || i || '@bench.example', 'r' || i || '@bench.example',
       CASE WHEN i % 20 = 0 THEN 'pending' WHEN i % 10 = 1 THEN 'unsubscribed' ELSE 'confirmed' END,
       ARRAY['topic ' || (i % 50)],
       now() - ((i % 90) || ' days')::interval, now() - ((i % 90) || ' days')::interval
FROM generate_series(1, $SUBSCRIBERS) AS i;

INSERT INTO subscriber_events (kind, at)
SELECT CASE WHEN i % 3 = 0 THEN 'confirmed' WHEN i % 7 = 0 THEN 'unsubscribed' ELSE 'subscribed' END,
       now() - ((i % 90) || ' days')::interval - ((i % 1440) || ' minutes')::interval
FROM generate_series(1, $SUBSCRIBERS * 3 / 2) AS i;

INSERT INTO editions (frequency, day, label)
SELECT 'daily', current_date - d, to_char(current_date - d, 'YYYY-MM-DD') FROM generate_series(0, 89) AS d;

-- Every subscriber gets 10 of the 90 editions: $DELIVERIES rows in all.
INSERT INTO deliveries (edition_id, subscriber_id, edition_label, status, attempts, created_at, sent_at, paper_ids)
SELECT e.id, s.id, e.label,
       CASE WHEN (s.n + e.id) % 97 = 0 THEN 'failed' WHEN (s.n + e.id) % 13 = 0 THEN 'skipped' ELSE 'sent' END,
       1, e.day + time '07:00', e.day + time '07:01', ARRAY['2511.00001', '2511.00002']
FROM editions e
JOIN (SELECT id, row_number() OVER () AS n FROM subscribers) s
  ON s.n % 9 = e.id % 9 AND s.n <= $DELIVERIES / 10;
ANALYZE;
SQL
then
  echo "seeding failed; not timing GET /admin" >&2
  exit 1
fi
echo "seeded in $(( $(date +%s) - start )) s: $(psql "$PG/$DB" -Atc 'SELECT count(*) FROM deliveries') deliveries"

DATABASE_URL="$PG/$DB" PAPERBOY_BIND="127.0.0.1:$PORT" PAPERBOY_SCHEDULER=off RUST_LOG=warn \
  PAPERBOY_ADMIN_EMAIL=bench@bench.example PAPERBOY_ADMIN_PASSWORD=benchmark-password \
  PAPERBOY_OUTBOX_DIR="$WORK/outbox" "$BIN" serve &
APP_PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done

JAR="$WORK/cookies"
CSRF=$(curl -s -c "$JAR" "http://127.0.0.1:$PORT/admin/login" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p')
curl -s -b "$JAR" -c "$JAR" -o /dev/null -w '' \
  --data-urlencode "email=bench@bench.example" --data-urlencode "password=benchmark-password" --data-urlencode "csrf=$CSRF" \
  "http://127.0.0.1:$PORT/admin/login"

first=$(curl -s -b "$JAR" -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/admin")
for _ in $(seq 1 20); do
  curl -s -b "$JAR" -o "$WORK/page.html" -w '%{time_total}\n' "http://127.0.0.1:$PORT/admin"
done | sort -n > "$WORK/times"
grep -q "confirmed subscribers" "$WORK/page.html" || { echo "the overview did not render" >&2; exit 1; }
awk -v first="$first" '{ t[NR] = $1 * 1000 } END {
  printf "GET /admin, first request (fills the 89 days of rollups): %.0f ms\n", first * 1000
  printf "GET /admin, 20 requests after: median %.0f ms, p95 %.0f ms, max %.0f ms (target <= 200 ms)\n", t[int(NR/2)+1], t[int(NR*0.95)], t[NR]
}' "$WORK/times"
