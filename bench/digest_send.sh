#!/usr/bin/env bash
# Digest delivery at scale: seeds N confirmed subscribers with varied interests over one
# fixture day, runs `paperboy send` into Postfix's smtp-sink on loopback, and compares its
# rate with smtp-source sending messages of the same size into the same sink.
# Prints digests/s, peak memory, the smtp-source rate and their ratio, for N and N/10.
#
#   bash bench/digest_send.sh [SUBSCRIBERS]        (default 100000; needs Debian's postfix)
set -euo pipefail
cd "$(dirname "$0")/.."

SUBSCRIBERS=${1:-100000}
PG=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
FIXTURES=${PAPERBOY_FIXTURES:-tests/fixtures}
DAY=2025-11-26
CONCURRENCY=${PAPERBOY_SEND_CONCURRENCY:-8}
SINK_PORT=25251
HF_PORT=25252
WORK=$(mktemp -d)
# With the model loaded (ranking by meaning; the papers are embedded when seeded, the
# subscribers' topics by the send itself), as `serve` and `send` run it. Set it to `off`
# to measure literal ranking.
export PAPERBOY_EMBEDDING_MODEL=${PAPERBOY_EMBEDDING_MODEL:-$PWD/.cache/models/all-MiniLM-L6-v2}

command -v smtp-sink >/dev/null || { echo "needs smtp-sink: apt-get install postfix" >&2; exit 1; }
cargo build --release --quiet
BIN=target/release/paperboy

cleanup() {
  [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null || true
  [ -n "${HF_PID:-}" ] && kill "$HF_PID" 2>/dev/null || true
  for db in paperboy_bench_sample paperboy_bench_$SUBSCRIBERS paperboy_bench_$((SUBSCRIBERS / 10)); do
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

python3 bench/fixture_server.py "$HF_PORT" "$FIXTURES/huggingface/daily_papers/$DAY.json" &
HF_PID=$!
smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 1024 &
SINK_PID=$!
sleep 1

# A database with the day's papers and $2 subscribers whose interests cycle through a mix
# (a third of them with ratings).
seed() {
  local db=$1 n=$2
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null
  DATABASE_URL="$PG/$db" PAPERBOY_HF_URL="http://127.0.0.1:$HF_PORT" RUST_LOG=warn \
    "$BIN" ingest --source huggingface --date "$DAY" >/dev/null
  if [ "$PAPERBOY_EMBEDDING_MODEL" != off ]; then
    DATABASE_URL="$PG/$db" RUST_LOG=warn "$BIN" embed >/dev/null
  fi
  psql "$PG/$db" -qc "
    INSERT INTO subscribers (email, email_key, status, confirmed_at, topics, categories, authors, papers_per_email)
    SELECT 'subscriber' || i || '@bench.example', 'subscriber' || i || '@bench.example', 'confirmed',
           now(),
           CASE i % 8
             WHEN 0 THEN ARRAY['diffusion']
             WHEN 1 THEN ARRAY['video generation', 'agents']
             WHEN 2 THEN ARRAY['reinforcement learning']
             WHEN 3 THEN ARRAY['large language models', 'reasoning']
             WHEN 4 THEN ARRAY[]::text[]
             WHEN 5 THEN ARRAY['multimodal', 'benchmark']
             WHEN 6 THEN ARRAY['world models']
             ELSE ARRAY['reasoning', 'reinforcement learning', 'agents', 'diffusion', 'vision']
           END,
           CASE WHEN i % 5 = 0 THEN ARRAY['cs.CV'] ELSE '{}' END,
           CASE WHEN i % 11 = 0 THEN ARRAY['Yann LeCun'] ELSE '{}' END,
           5 + i % 10
    FROM generate_series(1, $n) AS i"
  # Every third subscriber has rated papers: a taste of 80 stems (from the lexicon the ingest
  # filled), three liked papers and two rated down, one of seven such models each.
  psql "$PG/$db" -qc "
    WITH models AS (
      SELECT k, jsonb_build_object(
        'terms', (SELECT jsonb_agg(jsonb_build_array(term, 0.11, 0)) FROM (
                    SELECT term FROM lexicon_terms WHERE df BETWEEN 2 AND 10
                    ORDER BY md5(term || k) LIMIT 80) t),
        'liked', (SELECT jsonb_agg(jsonb_build_array(arxiv_id, title)) FROM (
                    SELECT arxiv_id, title FROM papers ORDER BY md5(arxiv_id || k) LIMIT 3) l),
        'rejected', (SELECT jsonb_agg(arxiv_id) FROM (
                    SELECT arxiv_id FROM papers ORDER BY md5(arxiv_id || k) DESC LIMIT 2) r)) AS model
      FROM generate_series(0, 6) AS k)
    INSERT INTO tastes (subscriber_id, model)
    SELECT s.id, m.model
    FROM subscribers s
    JOIN models m ON m.k = substring(s.email FROM 'subscriber([0-9]+)@')::int % 7
    WHERE substring(s.email FROM 'subscriber([0-9]+)@')::int % 3 = 0"
}

# The average size of a digest, from a small run into the outbox.
seed paperboy_bench_sample 200
DATABASE_URL="$PG/paperboy_bench_sample" PAPERBOY_OUTBOX_DIR="$WORK/outbox" RUST_LOG=warn \
  "$BIN" send --date "$DAY" >/dev/null
SIZE=$(find "$WORK/outbox" -name '*.eml' -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s / NR }')

run() {
  local n=$1 db=paperboy_bench_$1
  seed "$db" "$n"
  local start end
  start=$(date +%s.%N)
  DATABASE_URL="$PG/$db" PAPERBOY_SMTP_URL="smtp://127.0.0.1:$SINK_PORT" PAPERBOY_SEND_CONCURRENCY=$CONCURRENCY \
    RUST_LOG=warn /usr/bin/time -f "%M" -o "$WORK/rss" "$BIN" send --date "$DAY" > "$WORK/summary"
  end=$(date +%s.%N)
  local sent rss_kb secs
  sent=$(sed -E 's/.* sent ([0-9]+),.*/\1/' "$WORK/summary")
  rss_kb=$(cat "$WORK/rss")
  secs=$(echo "$end - $start" | bc -l)
  echo "$n $sent $secs $rss_kb"
}

read -r N1 SENT1 SECS1 RSS1 < <(run "$SUBSCRIBERS")
read -r N2 SENT2 SECS2 RSS2 < <(run $((SUBSCRIBERS / 10)))

# smtp-source: the same number of messages of the same size, same concurrency, same sink.
start=$(date +%s.%N)
smtp-source -s "$CONCURRENCY" -m "$SENT1" -l "$SIZE" -f bench@localhost -t sink@localhost "127.0.0.1:$SINK_PORT"
end=$(date +%s.%N)
SOURCE_SECS=$(echo "$end - $start" | bc -l)

awk -v n1="$N1" -v s1="$SENT1" -v t1="$SECS1" -v r1="$RSS1" \
    -v n2="$N2" -v s2="$SENT2" -v t2="$SECS2" -v r2="$RSS2" \
    -v size="$SIZE" -v ts="$SOURCE_SECS" -v c="$CONCURRENCY" 'BEGIN {
  rate1 = s1 / t1; rate2 = s2 / t2; source = s1 / ts;
  printf "digest size (average):        %d bytes\n", size
  printf "paperboy send, %6d subscribers: %d digests in %.1f s = %.0f digests/s, peak RSS %.1f MB\n", n1, s1, t1, rate1, r1 / 1024
  printf "paperboy send, %6d subscribers: %d digests in %.1f s = %.0f digests/s, peak RSS %.1f MB\n", n2, s2, t2, rate2, r2 / 1024
  printf "smtp-source,   %6d messages: %.1f s = %.0f messages/s (%d sessions)\n", s1, ts, source, c
  printf "ratio paperboy / smtp-source: %.2f (target >= 0.5)\n", rate1 / source
  printf "memory %d vs %d subscribers:  %.2fx (target <= 1.2x, and <= 150 MB)\n", n1, n2, r1 / r2
}'
