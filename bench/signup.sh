#!/usr/bin/env bash
# The front door under load: ingests one fixture day (so the landing page lists ~15 KB of
# papers), starts `paperboy serve` with its mail worker sending into Postfix's smtp-sink on
# loopback, then
#   1. POST /subscribe with wrk, a unique address on every request, for DURATION seconds;
#      waits until every confirmation email has been sent and reports sign-ups/s, latency,
#      non-2xx answers, and the confirmation rate during the load and overall;
#   2. GET / (the landing page) with wrk for DURATION seconds: req/s, latency, page size.
#
#   bash bench/signup.sh                 (needs Debian's wrk and postfix, for smtp-sink)
#   PAPERBOY_BIN=path/to/paperboy DURATION=20 bash bench/signup.sh
#
# With the embedding model in .cache/models/all-MiniLM-L6-v2 (tests/fetch_model.sh), `serve`
# ranks by meaning and its embedding worker works through a backlog of EMBED_BACKLOG papers
# (default 2,000: copies of the day's papers) while the sign-ups go on; the report says how
# many it embedded meanwhile. EMBED_BACKLOG=0, or no model folder: the model is off.
#
# Knobs: DURATION (default 30 s per wrk run), CONNECTIONS (64), THREADS (2),
# DRAIN_TIMEOUT (900 s to wait for the confirmations), PAPERBOY_BENCH_LOG (the server's
# log file; by default a temporary file whose tail is shown if the run fails).
set -euo pipefail
cd "$(dirname "$0")/.."

PG=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
FIXTURES=${PAPERBOY_FIXTURES:-tests/fixtures}
DAY=2025-11-26
DB=paperboy_bench_signup
DURATION=${DURATION:-30}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-900}
EMBED_BACKLOG=${EMBED_BACKLOG:-2000}
MODEL=${PAPERBOY_EMBEDDING_MODEL:-$PWD/.cache/models/all-MiniLM-L6-v2}
if [ "$EMBED_BACKLOG" = 0 ] || ! [ -f "$MODEL/model.safetensors" ]; then MODEL=off; fi
SINK_PORT=25261
HF_PORT=25262
PORT=25263
BASE="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)
LOG=${PAPERBOY_BENCH_LOG:-$WORK/paperboy.log}

for tool in wrk smtp-sink curl psql; do
  command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install wrk postfix curl postgresql-client" >&2; exit 1; }
done
if [ -z "${PAPERBOY_BIN:-}" ]; then
  cargo build --release --quiet
fi
BIN=${PAPERBOY_BIN:-target/release/paperboy}
[ -x "$BIN" ] || { echo "no paperboy binary at $BIN" >&2; exit 1; }

cleanup() {
  local rc=$?
  if [ -n "${APP_PID:-}" ] && kill "$APP_PID" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$APP_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$APP_PID" 2>/dev/null || true
  fi
  [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null || true
  [ -n "${HF_PID:-}" ] && kill "$HF_PID" 2>/dev/null || true
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null || true
  if [ "$rc" -ne 0 ] && [ -s "$LOG" ]; then
    echo "--- last lines of the paperboy log ($LOG) ---" >&2
    tail -n 30 "$LOG" | sed 's/\x1b\[[0-9;]*m//g' >&2
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

python3 bench/fixture_server.py "$HF_PORT" "$FIXTURES/huggingface/daily_papers/$DAY.json" &
HF_PID=$!
# -c: running counters (sessions, QUITs, messages) on stdout, updated at every "." received.
smtp-sink -c -u nobody "127.0.0.1:$SINK_PORT" 1024 > "$WORK/sink.out" 2>&1 &
SINK_PID=$!
sleep 1

psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
DATABASE_URL="$PG/$DB" PAPERBOY_HF_URL="http://127.0.0.1:$HF_PORT" RUST_LOG=warn \
  "$BIN" ingest --source huggingface --date "$DAY" >/dev/null

if [ "$MODEL" != off ]; then
  # The backlog: copies of the day's papers under new ids, with no vectors yet.
  psql "$PG/$DB" -qc "INSERT INTO papers (arxiv_id, title, abstract, authors, featured_on, upvotes)
    SELECT 'backlog.' || n || '.' || p.arxiv_id, p.title, p.abstract, p.authors, date '2025-01-01', 0
    FROM papers p, generate_series(1, ceil($EMBED_BACKLOG::float / (SELECT count(*) FROM papers))::int) AS n
    LIMIT $EMBED_BACKLOG"
fi

DATABASE_URL="$PG/$DB" PAPERBOY_BIND="127.0.0.1:$PORT" PAPERBOY_SMTP_URL="smtp://127.0.0.1:$SINK_PORT" \
  PAPERBOY_SUBSCRIBE_RATE=0 PAPERBOY_SCHEDULER=off RUST_LOG=warn \
  PAPERBOY_EMBEDDING_MODEL="$MODEL" \
  "$BIN" serve >> "$LOG" 2>&1 &
APP_PID=$!
ready=
for _ in $(seq 1 150); do
  kill -0 "$APP_PID" 2>/dev/null || { echo "paperboy serve exited during start-up" >&2; exit 1; }
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz")" = 200 ]; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || { echo "paperboy did not become ready within 30 s" >&2; exit 1; }

sql() { psql "$PG/$DB" -Atq -F ' ' -v ON_ERROR_STOP=1 -c "$1"; }

# The set-up (a new database, its migrations and the ingest) leaves a checkpoint to come:
# syncing the new database's files would stall the first seconds of the load on this disk.
# Take it now, so the load measures sign-ups rather than the set-up.
sql "CHECKPOINT"
sync

source bench/lib.sh

# --- POST /subscribe ------------------------------------------------------------------
RUN_ID=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
cat > "$WORK/signup.lua" <<LUA
-- One unique address per request: run id, thread number, per-thread counter.
local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  sent = 0
  non2xx = 0
  codes = {}
end

local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

function request()
  sent = sent + 1
  local body = "email=s$RUN_ID-t" .. id .. "-" .. sent .. "%40bench.example"
    .. "&topics=diffusion%20models&frequency=daily&website="
  return wrk.format("POST", "/subscribe", headers, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    codes[status] = (codes[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local total, by_code = 0, {}
  for _, t in ipairs(threads) do
    total = total + t:get("non2xx")
    for code, n in pairs(t:get("codes")) do by_code[code] = (by_code[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(by_code) do table.insert(parts, code .. ": " .. n) end
  table.sort(parts)
  io.write(string.format("non-2xx (counted by the script): %d %s\n", total,
    #parts > 0 and ("(" .. table.concat(parts, ", ") .. ")") or ""))
end
LUA

if [ "$MODEL" != off ]; then
  # The model loads in the background: the load starts once the worker is embedding.
  for _ in $(seq 1 300); do
    [ "$(sql "SELECT count(*) FROM paper_vectors")" -gt 0 ] && break
    sleep 0.2
  done
fi
EMBEDDED_BEFORE=$(sql "SELECT count(*) FROM paper_vectors")
echo "== POST /subscribe: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s (binary: $BIN, model: $MODEL)"
WRK_START=$(date +%s.%N)
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/signup.lua" "$BASE/subscribe" \
  | tee "$WORK/wrk_signup.txt"
WRK_END=$(date +%s.%N)
EMBEDDED_DURING=$(( $(sql "SELECT count(*) FROM paper_vectors") - EMBEDDED_BEFORE ))

echo "== waiting for the confirmation emails (up to $DRAIN_TIMEOUT s)"
deadline=$(( $(date +%s) + DRAIN_TIMEOUT ))
last_report=0
while :; do
  row=$(sql "SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed'),
      count(*) FILTER (WHERE status = 'pending'), count(*) FROM outgoing_mail")
  read -r SENT FAILED PENDING TOTAL <<< "$row"
  [ "$PENDING" -eq 0 ] && break
  kill -0 "$APP_PID" 2>/dev/null || { echo "paperboy exited with $PENDING confirmations pending" >&2; exit 1; }
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "timed out: $SENT of $TOTAL confirmations sent, $FAILED failed, $PENDING pending" >&2
    exit 1
  fi
  if [ $(( $(date +%s) - last_report )) -ge 15 ]; then
    echo "   $SENT of $TOTAL sent, $FAILED failed, $PENDING pending"
    last_report=$(date +%s)
  fi
  sleep 1
done

row=$(sql "
  SELECT (SELECT count(*) FROM subscribers),
         count(*) FILTER (WHERE sent_at <= to_timestamp($WRK_END)),
         coalesce(extract(epoch FROM max(sent_at) - to_timestamp($WRK_START)), 0)
  FROM outgoing_mail WHERE status = 'sent'")
read -r SIGNUPS DURING SECS_TO_LAST <<< "$row"
SINK_MESSAGES=$(tr '\r' '\n' < "$WORK/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1)
WRK_NON2XX=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$WORK/wrk_signup.txt")
SOCKET_ERRORS=$(sed -n 's/.*Socket errors: *//p' "$WORK/wrk_signup.txt")
SCRIPT_NON2XX=$(sed -n 's/^non-2xx (counted by the script): \([0-9]*\).*/\1/p' "$WORK/wrk_signup.txt")
SIGNUP_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk_signup.txt")
SIGNUP_P50=$(percentile 50% "$WORK/wrk_signup.txt")
SIGNUP_P99=$(percentile 99% "$WORK/wrk_signup.txt")
SIGNUP_REQUESTS=$(awk '/requests in/ { print $1 }' "$WORK/wrk_signup.txt")

# The backlog goes on once the requests stop (embedding waits while requests are answered).
QUIET_SECS=$(awk -v t0="$WRK_END" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.0f", t1 - t0 }')
EMBEDDED_AFTER=$(( $(sql "SELECT count(*) FROM paper_vectors") - EMBEDDED_BEFORE - EMBEDDED_DURING ))

# --- GET / ----------------------------------------------------------------------------
PAGE=$(curl -s -o "$WORK/index.html" -w '%{http_code} %{size_download}' "$BASE/")
read -r PAGE_STATUS PAGE_BYTES <<< "$PAGE"
[ "$PAGE_STATUS" = 200 ] || { echo "GET / answered $PAGE_STATUS" >&2; exit 1; }
echo "== GET /: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s ($PAGE_BYTES bytes)"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$BASE/" | tee "$WORK/wrk_home.txt"
HOME_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk_home.txt")
HOME_P50=$(percentile 50% "$WORK/wrk_home.txt")
HOME_P99=$(percentile 99% "$WORK/wrk_home.txt")
HOME_NON2XX=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$WORK/wrk_home.txt")
HOME_SOCKET_ERRORS=$(sed -n 's/.*Socket errors: *//p' "$WORK/wrk_home.txt")

LOG_LINES=$(grep -c . "$LOG" || true)

# --- Summary --------------------------------------------------------------------------
echo
echo "== summary (DURATION=${DURATION}s, -t$THREADS -c$CONNECTIONS, binary $BIN)"
awk -v rps="$SIGNUP_RPS" -v p50="$SIGNUP_P50" -v p99="$SIGNUP_P99" -v reqs="$SIGNUP_REQUESTS" \
    -v wrk_non2xx="${WRK_NON2XX:-0}" -v script_non2xx="${SCRIPT_NON2XX:-?}" -v sockerr="${SOCKET_ERRORS:-none}" \
    -v signups="$SIGNUPS" -v total="$TOTAL" -v sent="$SENT" -v failed="$FAILED" -v during="$DURING" \
    -v t0="$WRK_START" -v t1="$WRK_END" -v to_last="$SECS_TO_LAST" -v sink="${SINK_MESSAGES:-?}" \
    -v hrps="$HOME_RPS" -v hp50="$HOME_P50" -v hp99="$HOME_P99" -v bytes="$PAGE_BYTES" \
    -v hnon2xx="${HOME_NON2XX:-0}" -v hsockerr="${HOME_SOCKET_ERRORS:-none}" -v loglines="$LOG_LINES" 'BEGIN {
  wrk_secs = t1 - t0
  printf "POST /subscribe  %.0f sign-ups/s (wrk: %d requests), p50 %.2f ms, p99 %.2f ms\n", rps, reqs, p50, p99
  printf "                 non-2xx: %s (wrk: %d), socket errors: %s\n", script_non2xx, wrk_non2xx, sockerr
  printf "                 %d subscribers in the database, %d confirmations queued\n", signups, total
  printf "confirmations    %d sent during the load (%.1f s): %.0f/s\n", during, wrk_secs, during / wrk_secs
  printf "                 %d sent in all, %d failed; last one %.1f s after the load began: %.0f/s overall\n", sent, failed, to_last, (to_last > 0 ? sent / to_last : 0)
  printf "                 the remaining %d drained in %.1f s after the load (%.0f/s); smtp-sink received %s\n", sent - during, to_last - wrk_secs, (to_last > wrk_secs ? (sent - during) / (to_last - wrk_secs) : 0), sink
  printf "GET /            %.0f req/s, p50 %.2f ms, p99 %.2f ms, page %d bytes, non-2xx %d, socket errors: %s\n", hrps, hp50, hp99, bytes, hnon2xx, hsockerr
  printf "paperboy log     %d lines at warn or above\n", loglines
}'
if [ "$MODEL" != off ]; then
  echo "embedding        $EMBEDDED_DURING papers embedded by serve's worker during the sign-ups (backlog $EMBED_BACKLOG; it waits while requests are answered),"
  echo "                 $EMBEDDED_AFTER in the ${QUIET_SECS} s after them, while the confirmations drained"
fi
if [ "$LOG_LINES" -gt 0 ]; then
  echo "--- last lines of the paperboy log ---"
  tail -n 5 "$LOG" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-300
fi
