#!/usr/bin/env bash
# Lighthouse on the pages a subscriber sees: the landing page, an archive day, a digest's web
# copy and the preferences page. Seeds one fixture day, signs a subscriber up through the form
# (mail to an outbox folder), confirms, sends the digest, then audits each page with the
# npm `lighthouse` package driving Debian's Chromium, headless. Prints the four scores of
# each page; exits 1 when a score is under 95.
#
#   bash bench/lighthouse.sh      (needs Node.js + npm and `apt-get install chromium`)
#
# The web copy and the preferences page are `noindex` on purpose (they are reached through
# a subscriber's private token; robots.txt also keeps crawlers out): on those two the audit
# that checks a page can be indexed (`is-crawlable`) is skipped, every other SEO audit runs.
set -euo pipefail
cd "$(dirname "$0")/.."

PG=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
FIXTURES=${PAPERBOY_FIXTURES:-tests/fixtures}
DAY=2025-11-26
PORT=25261
HF_PORT=25262
DB=paperboy_lighthouse
LH_DIR=${LIGHTHOUSE_DIR:-target/lighthouse}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
WORK=$(mktemp -d)

command -v npm >/dev/null || { echo "needs Node.js and npm" >&2; exit 1; }
[ -x "$CHROMIUM" ] || { echo "needs Chromium: apt-get install chromium" >&2; exit 1; }
[ -x "$LH_DIR/node_modules/.bin/lighthouse" ] ||
  npm install --silent --no-audit --no-fund --prefix "$LH_DIR" lighthouse@12 >/dev/null
cargo build --release --quiet
BIN=target/release/paperboy

cleanup() {
  [ -n "${APP_PID:-}" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null || true
  [ -n "${HF_PID:-}" ] && kill "$HF_PID" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

python3 bench/fixture_server.py "$HF_PORT" "$FIXTURES/huggingface/daily_papers/$DAY.json" &
HF_PID=$!
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
export DATABASE_URL="$PG/$DB" PAPERBOY_HF_URL="http://127.0.0.1:$HF_PORT" RUST_LOG=warn \
  PAPERBOY_OUTBOX_DIR="$WORK/outbox" PAPERBOY_BASE_URL="http://127.0.0.1:$PORT" \
  PAPERBOY_BIND="127.0.0.1:$PORT" PAPERBOY_SCHEDULER=off
sleep 0.5
"$BIN" ingest --source huggingface --date "$DAY" >/dev/null
"$BIN" serve &
APP_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done

# A subscriber signs up and confirms; the links come from the outbox.
link() { python3 bench/eml_link.py "$WORK/outbox" "http://127.0.0.1:$PORT/$1/"; }
curl -sf -o /dev/null "http://127.0.0.1:$PORT/subscribe" \
  --data-urlencode email=lighthouse@example.com --data-urlencode "topics=video generation, agents"
for _ in $(seq 50); do [ -n "$(link confirm 2>/dev/null)" ] && break; sleep 0.2; done
CONFIRMED=$(curl -sf -X POST "$(link confirm)")
PREFS="http://127.0.0.1:$PORT$(grep -oE '/preferences/[A-Za-z0-9_-]+' <<<"$CONFIRMED" | head -1)"
# The digest: `send` queues it (and delivers it, unless the running server's worker,
# woken by the queue, gets there first).
"$BIN" send --date "$DAY" >/dev/null
for _ in $(seq 50); do [ -n "$(link d 2>/dev/null)" ] && break; sleep 0.2; done
COPY=$(link d)

status=0
printf "%-16s %12s %14s %15s %5s\n" page performance accessibility "best practices" SEO
audit() {
  local name=$1 url=$2 skip=${3:-}
  "$LH_DIR/node_modules/.bin/lighthouse" "$url" --quiet --output=json --output-path="$WORK/$name.json" \
    --only-categories=performance,accessibility,best-practices,seo ${skip:+--skip-audits=$skip} \
    --chrome-path="$CHROMIUM" \
    --chrome-flags="--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir=$WORK/profile-$name" \
    >/dev/null 2>&1
  python3 - "$name" "$WORK/$name.json" <<'EOF' || status=1
import json, sys
name, path = sys.argv[1], sys.argv[2]
report = json.load(open(path))
cats = report["categories"]
scores = [round(cats[c]["score"] * 100) for c in ("performance", "accessibility", "best-practices", "seo")]
print(f"{name:<16} {scores[0]:>12} {scores[1]:>14} {scores[2]:>15} {scores[3]:>5}")
for c in cats.values():
    for ref in c["auditRefs"]:
        audit = report["audits"][ref["id"]]
        if ref["weight"] > 0 and audit["score"] is not None and audit["score"] < 0.9:
            print(f"    {c['id']}: {ref['id']} ({audit['title']})")
sys.exit(0 if min(scores) >= 95 else 1)
EOF
}
audit landing "http://127.0.0.1:$PORT/"
audit archive-day "http://127.0.0.1:$PORT/days/$DAY"
audit web-copy "$COPY" is-crawlable
audit preferences "$PREFS" is-crawlable
exit $status
