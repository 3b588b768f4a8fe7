#!/usr/bin/env bash
# A heavy rater: one subscriber holding RATINGS stored ratings (default 10,000, over as many
# synthetic papers with real-sized abstracts, all on the public archive) keeps rating.
#   1. POST /rate/… one at a time for DURATION seconds: latency (target p99 <= 50 ms);
#   2. four at once for DURATION seconds while GET /healthz is polled on one more
#      connection: both latencies (target: /healthz p99 <= 10 ms).
#
#   bash bench/ratings.sh                      (needs Debian's wrk)
#   PAPERBOY_BIN=path/to/paperboy DURATION=20 RATINGS=10000 bash bench/ratings.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PG=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
DB=paperboy_bench_ratings
DURATION=${DURATION:-20}
RATINGS=${RATINGS:-10000}
PORT=25264
BASE="http://127.0.0.1:$PORT"
SECRET=bench-ratings-secret
WORK=$(mktemp -d)
LOG=$WORK/paperboy.log

for tool in wrk curl psql python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install wrk curl postgresql-client" >&2; exit 1; }
done
if [ -z "${PAPERBOY_BIN:-}" ]; then
  cargo build --release --quiet
fi
BIN=${PAPERBOY_BIN:-target/release/paperboy}

cleanup() {
  local rc=$?
  [ -n "${APP_PID:-}" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null || true
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null || true
  if [ "$rc" -ne 0 ] && [ -s "$LOG" ]; then tail -n 30 "$LOG" >&2; fi
  rm -rf "$WORK"
}
[ -n "${KEEP_DB:-}" ] || trap cleanup EXIT

psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
DATABASE_URL="$PG/$DB" RUST_LOG=warn "$BIN" migrate >/dev/null
sql() { psql "$PG/$DB" -Atq -v ON_ERROR_STOP=1 -c "$1"; }
# Papers with abstracts of ~1,100 characters of varied words, featured on one day.
sql "INSERT INTO papers (arxiv_id, title, abstract, authors, featured_on, upvotes)
     SELECT 'bench.' || n, 'Paper ' || n || ' on ' || md5(n::text),
            (SELECT string_agg(md5((n * 40 + k)::text), ' ') FROM generate_series(1, 34) k),
            ARRAY['A. Author'], date '2025-11-26', n % 50
     FROM generate_series(1, $RATINGS) n"
SUBSCRIBER=$(sql "INSERT INTO subscribers (email, email_key, status, topics, confirmed_at)
     VALUES ('rater@bench.example', 'rater@bench.example', 'confirmed', '{diffusion models}', now())
     RETURNING id")
sql "INSERT INTO ratings (subscriber_id, arxiv_id, rating, rated_at)
     SELECT '$SUBSCRIBER', 'bench.' || n, CASE WHEN n % 3 = 0 THEN -1 ELSE 1 END,
            now() - n * interval '1 second'
     FROM generate_series(1, $RATINGS) n"
sql "VACUUM ANALYZE"

# The subscriber's rating token, as paperboy signs it (domain/links.rs).
TOKEN=$(python3 - "$SECRET" "$SUBSCRIBER" <<'PY'
import base64, hashlib, hmac, sys, uuid
key = hmac.new(sys.argv[1].encode(), b"paperboy link key v1", hashlib.sha256).digest()
sid = uuid.UUID(sys.argv[2]).bytes
mac = hmac.new(key, b"rate\0" + sid, hashlib.sha256).digest()[:16]
print(base64.urlsafe_b64encode(sid + mac).decode().rstrip("="))
PY
)

DATABASE_URL="$PG/$DB" PAPERBOY_BIND="127.0.0.1:$PORT" PAPERBOY_SECRET="$SECRET" \
  PAPERBOY_SUBSCRIBE_RATE=0 PAPERBOY_TRUST_PROXY=true PAPERBOY_SCHEDULER=off PAPERBOY_EMBEDDING_MODEL=off RUST_LOG=warn \
  PAPERBOY_OUTBOX_DIR="$WORK/outbox" "$BIN" serve >> "$LOG" 2>&1 &
APP_PID=$!
for _ in $(seq 1 150); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz")" = 200 ] && break
  sleep 0.2
done
# serve reads the seeded papers into the lexicon once, in the background: measure after.
for _ in $(seq 1 600); do
  [ "$(sql "SELECT count(*) FROM papers WHERE lexicon_at IS NULL")" = 0 ] && break
  sleep 0.5
done
code=$(curl -s -o /dev/null -w '%{http_code}' -d '' "$BASE/rate/$TOKEN/bench.1/up")
[ "$code" = 200 ] || { echo "a rating answered $code" >&2; exit 1; }

cat > "$WORK/rate.lua" <<LUA
math.randomseed(os.time())
function request()
  local n = math.random(1, $RATINGS)
  local way = (n % 2 == 0) and "up" or "down"
  -- Each rating from another client address (behind our proxy): the per-client limit of
  -- 30 a minute is not what this measures.
  local headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Forwarded-For"] = "10." .. math.random(0, 255) .. "." .. math.random(0, 255) .. "." .. math.random(1, 254),
  }
  return wrk.format("POST", "/rate/$TOKEN/bench." .. n .. "/" .. way, headers, "")
end
function done(summary, latency, requests)
  io.write(string.format("non2xx %d\n", summary.errors.status))
end
LUA

source bench/lib.sh
report() { # name file
  local reqs; reqs=$(awk '/Requests\/sec/ {print $2}' "$2")
  printf '%-32s %8s req/s  p50 %7s ms  p99 %7s ms  %s\n' "$1" "$reqs" \
    "$(percentile 50% "$2")" "$(percentile 99% "$2")" "$(grep -o 'non2xx [0-9]*' "$2" || true)"
}

echo "paperboy ratings: one subscriber with $RATINGS stored ratings ($(nproc) cores, $DURATION s per run)"
wrk -t1 -c1 -d"${DURATION}s" --latency -s "$WORK/rate.lua" "$BASE" > "$WORK/one.txt"
report "POST /rate, one at a time" "$WORK/one.txt"
wrk -t1 -c1 -d"${DURATION}s" --latency "$BASE/healthz" > "$WORK/health.txt" &
HEALTH_PID=$!
wrk -t2 -c4 -d"${DURATION}s" --latency -s "$WORK/rate.lua" "$BASE" > "$WORK/four.txt"
wait "$HEALTH_PID"
report "POST /rate, four at once" "$WORK/four.txt"
report "GET /healthz meanwhile" "$WORK/health.txt"
echo "ratings stored: $(sql "SELECT count(*) FROM ratings")"
