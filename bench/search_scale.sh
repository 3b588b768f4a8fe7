#!/usr/bin/env bash
# Similar papers and search over 1,000,000 papers with vectors (synthetic, clustered).
#   1. In process (`examples/search_scale.rs index`): the exact scan's latency, the
#      approximate index's build time, latency and recall@10 against the exact scan, peak RSS.
#   2. End to end: the same vectors stored in Postgres, `paperboy serve` loads them and builds
#      its index in the background; then GET /papers/{id} and GET /search?q=… one at a time,
#      p50/p95 each (target p95 <= 50 ms), and serve's peak RSS.
#
#   bash bench/search_scale.sh                  (about 40 minutes on 2 cores)
#   PAPERS=200000 STEPS=http bash bench/search_scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PG=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
DB=paperboy_bench_search
PAPERS=${PAPERS:-1000000}
STEPS=${STEPS:-index,http}
REQUESTS=${REQUESTS:-300}
PORT=25265
BASE="http://127.0.0.1:$PORT"
MODEL=${MODEL:-.cache/models/all-MiniLM-L6-v2}
WORK=$(mktemp -d)
LOG=$WORK/paperboy.log

for tool in curl psql python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
bash tests/fetch_model.sh "$MODEL"
cargo build --release --quiet --example search_scale --bin paperboy
BIN=target/release/paperboy
EXAMPLE=target/release/examples/search_scale

cleanup() {
  local rc=$?
  [ -n "${APP_PID:-}" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null || true
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null || true
  if [ "$rc" -ne 0 ] && [ -s "$LOG" ]; then tail -n 30 "$LOG" >&2; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [[ $STEPS == *index* ]]; then
  echo "== in process: $PAPERS vectors"
  "$EXAMPLE" index "$PAPERS"
fi

if [[ $STEPS == *http* ]]; then
  echo "== end to end: $PAPERS papers in Postgres, paperboy serve"
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
  DATABASE_URL="$PG/$DB" RUST_LOG=warn "$BIN" migrate >/dev/null
  # serve stores vectors under the model's id: the folder's path as configured.
  DATABASE_URL="$PG/$DB" "$EXAMPLE" seed "$PAPERS" "$MODEL"
  # An archive is embedded over months, not in the seed's minute and a half (a refresh reads
  # the last two minutes again, which would be the whole archive).
  psql "$PG/$DB" -qc "UPDATE paper_vectors
                      SET embedded_at = now() - interval '1 second' * (hashtext(arxiv_id) & 33554431)"
  psql "$PG/$DB" -qc "VACUUM ANALYZE"
  started=$(date +%s)
  DATABASE_URL="$PG/$DB" PAPERBOY_BIND="127.0.0.1:$PORT" PAPERBOY_EMBEDDING_MODEL="$MODEL" \
    PAPERBOY_SCHEDULER=off PAPERBOY_SEARCH_RATE=0 PAPERBOY_OUTBOX_DIR="$WORK/outbox" \
    PAPERBOY_SECRET=bench-search-secret RUST_LOG=info,paperboy=info PAPERBOY_LOG_FORMAT=json \
    "$BIN" serve >"$LOG" 2>&1 &
  APP_PID=$!
  until grep -q "the search index is built" "$LOG"; do
    kill -0 "$APP_PID" 2>/dev/null || { echo "serve stopped" >&2; exit 1; }
    sleep 5
  done
  echo "serve: archive loaded and index built $(( $(date +%s) - started )) s after start"
  grep "the search index is built" "$LOG" | tail -n 1
  python3 - "$BASE" "$PAPERS" "$REQUESTS" <<'PY'
import random, sys, time, urllib.request
base, papers, requests = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(7)
words = ("diffusion transformer agents reinforcement learning video generation robot soccer "
         "language models retrieval graph vision benchmark reasoning speech tabular sparse "
         "attention quantization protein molecules planning").split()
def arxiv_id(i):
    month = i // 100000
    return "%02d%02d.%05d" % (15 + month // 12, 1 + month % 12, i % 100000)
def timed(paths):
    times = []
    for path in paths:
        t = time.perf_counter()
        with urllib.request.urlopen(base + path) as r:
            r.read()
            assert r.status == 200, (path, r.status)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return times[len(times) // 2], times[max(0, int(len(times) * 0.95 + 0.5) - 1)]
for label, paths in [
    ("GET /papers/{id}", ["/papers/" + arxiv_id(random.randrange(papers)) for _ in range(requests)]),
    ("GET /search?q=…", ["/search?q=" + "+".join(random.sample(words, 3)) for _ in range(requests)]),
]:
    timed(paths[:20])  # warm up
    p50, p95 = timed(paths)
    print("%s: p50 %.1f ms, p95 %.1f ms (%d requests, one at a time)" % (label, p50, p95, len(paths)))
PY
  echo "serve peak RSS: $(awk '/VmHWM/ {printf "%.0f MiB", $2 / 1024}' /proc/$APP_PID/status)"
  curl -s "$BASE/metrics" >/dev/null || true
fi
