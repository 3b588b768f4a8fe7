#!/usr/bin/env bash
# A simulated day of three instances: three `paperboy serve` processes on one database,
# ingesting Hugging Face every 2 minutes (a new fixture day each time) and queueing digests
# every minute for READERS seeded readers spread over time zones and delivery hours (some
# due at once, some when their local hour turns during the run), under a mixed load of
# sign-ups and confirmations, preference saves, ratings, feed polls with If-None-Match and
# page views. Half-way: a SIGTERM to one instance, a kill -9 of another (each started again)
# and a Postgres restart. At the end it prints the counts and PASS or FAIL:
#   - every confirmed reader has exactly the editions that were due, and every digest
#     marked sent arrived once (duplicates only from the kill -9, at most its in-flight
#     messages);
#   - every sign-up's confirmation arrived;
#   - no 5xx outside the Postgres restart window;
#   - each process's RSS at the end within 1.2x of its RSS 5 minutes after it started.
#
#   bash bench/soak.sh                       (DURATION=1440 s by default: 24 minutes)
#   DURATION=1800 READERS=6000 SOAK_LOAD=2 bash bench/soak.sh
# (RSS is judged from minute 4 of each process on: a run of under ~15 minutes FAILs on it,
# whatever its counts say.)
#
# Needs psql, CPython 3.11 (its smtpd module is the SMTP sink) and the right to restart the
# local Postgres (SOAK_PG_RESTART, by default pg_ctlcluster's fast restart of the machine's
# cluster). The claim lease is 60 s here, so a killed instance's claims come free quickly.
set -euo pipefail
cd "$(dirname "$0")/.."

PG=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
DB=paperboy_soak
READERS=${READERS:-3000}
FIXTURES=${PAPERBOY_FIXTURES:-tests/fixtures}
MODEL=${PAPERBOY_EMBEDDING_MODEL:-$PWD/.cache/models/all-MiniLM-L6-v2}
[ -f "$MODEL/model.safetensors" ] || MODEL=off
WORK=$(mktemp -d)
HF_PORT=25316
CLUSTER=$(ls /etc/postgresql 2>/dev/null | head -1)
export SOAK_PG_RESTART=${SOAK_PG_RESTART:-"pg_ctlcluster --skip-systemctl-redirect $CLUSTER main restart -m fast"}

for tool in psql python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
if [ -z "${PAPERBOY_BIN:-}" ]; then
  cargo build --release --quiet
fi
BIN=$(realpath "${PAPERBOY_BIN:-target/release/paperboy}")

cleanup() {
  pkill -f "$BIN serve" 2>/dev/null || true
  pkill -f "bench/fixture_server.py 25315" 2>/dev/null || true
  [ -n "${HF_PID:-}" ] && kill "$HF_PID" 2>/dev/null || true
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null || true
  echo "logs: $WORK"
}
trap cleanup EXIT

psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
export PAPERBOY_EMBEDDING_MODEL=$MODEL PAPERBOY_SECRET=soak-secret-the-same-on-every-instance
export RUST_LOG=warn PAPERBOY_OUTBOX_DIR=$WORK/outbox

# Yesterday's papers (the edition every digest of the run is made from), embedded.
YESTERDAY=$(date -u -d yesterday +%F)
python3 bench/fixture_server.py "$HF_PORT" "$FIXTURES/huggingface/daily_papers/2025-11-26.json" &
HF_PID=$!
sleep 1
DATABASE_URL="$PG/$DB" PAPERBOY_HF_URL="http://127.0.0.1:$HF_PORT" \
  "$BIN" ingest --source huggingface --date "$YESTERDAY" >/dev/null
kill "$HF_PID"; HF_PID=
[ "$MODEL" = off ] || DATABASE_URL="$PG/$DB" "$BIN" embed >/dev/null

# Readers over 16 time zones (four with half- or quarter-hour offsets, so local hours turn
# every 15 minutes somewhere) with delivery hours at or just after their local hour now:
# about half are due at once, the rest as their hour comes. One in six is weekly, due today.
psql "$PG/$DB" -qc "
  WITH zones(i, name) AS (
    SELECT row_number() OVER () - 1, z FROM unnest(ARRAY[
      'UTC', 'Europe/Berlin', 'America/New_York', 'America/Los_Angeles', 'Asia/Tokyo',
      'Asia/Kolkata', 'Asia/Kathmandu', 'Australia/Adelaide', 'America/St_Johns',
      'Pacific/Auckland', 'America/Sao_Paulo', 'Africa/Nairobi', 'Asia/Shanghai',
      'Europe/London', 'Pacific/Honolulu', 'Asia/Tehran']) AS z)
  INSERT INTO subscribers (email, email_key, status, confirmed_at, topics, frequency, weekday,
                           delivery_hour, time_zone, papers_per_email)
  SELECT 'seeded' || g || '@soak.example', 'seeded' || g || '@soak.example', 'confirmed',
         now() - interval '1 day',
         CASE g % 5 WHEN 0 THEN ARRAY['diffusion'] WHEN 1 THEN ARRAY['agents', 'reasoning']
                    WHEN 2 THEN ARRAY['video generation'] WHEN 3 THEN ARRAY['reinforcement learning']
                    ELSE ARRAY[]::text[] END,
         CASE WHEN g % 6 = 0 THEN 'weekly' ELSE 'daily' END,
         extract(isodow FROM now() AT TIME ZONE z.name)::int,
         (extract(hour FROM now() AT TIME ZONE z.name)::int + (g / 16) % 2) % 24,
         z.name, 5
  FROM generate_series(1, $READERS) AS g JOIN zones z ON z.i = g % 16"

SOAK_BIN=$BIN SOAK_DATABASE_URL="$PG/$DB" SOAK_WORK=$WORK \
  SOAK_FIXTURES="$FIXTURES/huggingface/daily_papers" \
  python3 -W ignore::DeprecationWarning bench/soak.py
