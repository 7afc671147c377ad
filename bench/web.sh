#!/usr/bin/env bash
# Lighthouse against the release build with the demo data (issue 21):
# `make bench-web`. Mobile emulation (Lighthouse's default: a mid-range phone
# on a throttled 4G link, simulated), Debian's Chromium. Prints per page the
# bytes transferred, the performance, accessibility and best-practices
# scores, total blocking time and largest contentful paint, and keeps the
# JSON reports in target/lighthouse/. Not part of make test (about 2 minutes
# per run of six pages); the README keeps the figures.
#
# LH_RUNS=<n> runs each page n times and prints the median of each figure.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=$HOME/.cache/diabase/target}"
BIN="${DIABASE_BIN:-$CARGO_TARGET_DIR/server-release/diabase}"
LH_VERSION=12.8.2
LH_DIR="${LH_DIR:-$HOME/.cache/diabase/lighthouse}"
RUNS="${LH_RUNS:-1}"
OUT=target/lighthouse
export CHROME_PATH="${CHROME_PATH:-/usr/bin/chromium}"

if ! "$LH_DIR/node_modules/.bin/lighthouse" --version 2>/dev/null | grep -qx "$LH_VERSION"; then
  mkdir -p "$LH_DIR"
  npm install --prefix "$LH_DIR" --no-audit --no-fund --silent "lighthouse@$LH_VERSION"
fi
[ -x "$BIN" ] || { echo "no server binary at $BIN: run make site first" >&2; exit 1; }

WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://localhost:$PORT"
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
DATABASE_URL="sqlite://$WORK/web.sqlite?mode=rwc" DIABASE_KEY_FILE="$WORK/key" LEPTOS_SITE_ROOT=target/site \
  RUST_LOG=warn "$BIN" serve --addr "127.0.0.1:$PORT" --demo >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 120); do curl -fs "$BASE/api/v1/health" >/dev/null 2>&1 && break; sleep 0.5; done
curl -fs "$BASE/api/v1/health" >/dev/null || { cat "$WORK/server.log" >&2; exit 1; }

# A session cookie of a demo account, sent with every request of a run.
cookie() {
  curl -fs -D - -o /dev/null -H 'content-type: application/json' -d "{\"email\":\"$1\",\"password\":\"$2\"}" \
    "$BASE/api/v1/auth/login" | awk -F'[: ;]+' 'tolower($1)=="set-cookie"{print $2; exit}'
}
PATIENT=$(cookie demo.patient@diabase.example glucose-demo-patient-2026)
CLINICIAN=$(cookie demo.clinician@diabase.example glucose-demo-clinician-2026)
[ -n "$PATIENT" ] && [ -n "$CLINICIAN" ] || { echo "demo log-in failed" >&2; exit 1; }

mkdir -p "$OUT"
run() { # name path cookie
  local name=$1 path=$2 jar=$3 headers='{}'
  [ -n "$jar" ] && headers="{\"Cookie\":\"$jar\"}"
  for i in $(seq 1 "$RUNS"); do
    "$LH_DIR/node_modules/.bin/lighthouse" "$BASE$path" --quiet \
      --chrome-flags="--headless=new --no-sandbox --disable-gpu" \
      --only-categories=performance,accessibility,best-practices \
      --extra-headers="$headers" --output=json --output-path="$OUT/$name-$i.json" >/dev/null
  done
}
run log-in /login ""
run dashboard / "$PATIENT"
run overview /reports "$PATIENT"
run daily /reports/daily "$PATIENT"
run upload /upload "$PATIENT"
run clinic /clinic "$CLINICIAN"

python3 - "$OUT" "$RUNS" <<'EOF'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
print(f"Lighthouse {json.load(open(f'{out}/log-in-1.json'))['lighthouseVersion']}, mobile, median of {runs} run(s)")
print(f"{'page':<10} {'KB sent':>8} {'perf':>5} {'a11y':>5} {'best':>5} {'TBT ms':>7} {'LCP s':>6}")
for name in ["log-in", "dashboard", "overview", "daily", "upload", "clinic"]:
    reps = [json.load(open(f"{out}/{name}-{i}.json")) for i in range(1, runs + 1)]
    med = lambda f: statistics.median(f(r) for r in reps)
    kb = med(lambda r: r["audits"]["total-byte-weight"]["numericValue"]) / 1000
    cat = lambda c: med(lambda r: r["categories"][c]["score"] or 0)
    tbt = med(lambda r: r["audits"]["total-blocking-time"]["numericValue"])
    lcp = med(lambda r: r["audits"]["largest-contentful-paint"]["numericValue"]) / 1000
    print(f"{name:<10} {kb:>8.0f} {cat('performance'):>5.2f} {cat('accessibility'):>5.2f} {cat('best-practices'):>5.2f} {tbt:>7.0f} {lcp:>6.2f}")
EOF
