#!/usr/bin/env bash
# Schemathesis against the served API (make test, issue 24): the release
# server on a fresh SQLite database with the demo data, a full-scope token of
# the demo patient and the patient's Nightscout secret, then property-based
# requests from /api/v1/openapi.json for ST_SECONDS seconds. It fails on a
# server error, a status code or content type the document does not list, or
# a response that breaks its schema. The seed and the report are printed;
# ST_SEED=<n> replays a run, ST_SEED=random explores.
#
# Operations that end the caller's own access are left out, or the rest of
# the run would only see 401: deleting the account, logging out everywhere,
# ending sessions and turning off two-factor authentication. They are covered
# by the integration tests. The failed-credential limits are raised for the
# run (Schemathesis sends wrong credentials on purpose; at the default limit
# the address would get only 429 after a minute); server/tests/limits.rs and
# nightscout.rs test the limits themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=$HOME/.cache/diabase/target}"
BIN="${DIABASE_BIN:-$CARGO_TARGET_DIR/server-release/diabase}"
VENV="${ST_VENV:-$HOME/.cache/diabase/schemathesis-venv}"
ST_VERSION=4.32.5
SECONDS_BUDGET="${ST_SECONDS:-150}"
# A fixed seed by default, so that make test is repeatable; ST_SEED=random
# explores (then replay what it finds with ST_SEED=<the printed seed>).
SEED="${ST_SEED:-2024}"
if [ "$SEED" = random ]; then SEED=$(( (RANDOM << 15) | RANDOM )); fi

if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$ST_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$ST_VERSION"
fi
[ -x "$BIN" ] || { echo "no server binary at $BIN: run make site first" >&2; exit 1; }

WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
DATABASE_URL="sqlite://$WORK/st.sqlite?mode=rwc" DIABASE_KEY_FILE="$WORK/key" LEPTOS_SITE_ROOT=target/site \
  DIABASE_NS_FAILED_AUTH_LIMIT=1000000 DIABASE_LOGIN_LIMIT_PER_IP=1000000 \
  RUST_LOG=warn "$BIN" serve --addr "127.0.0.1:$PORT" --demo >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 120); do curl -fs "$BASE/api/v1/health" >/dev/null 2>&1 && break; sleep 0.5; done
curl -fs "$BASE/api/v1/health" >/dev/null || { cat "$WORK/server.log" >&2; exit 1; }

# The demo patient: a full-scope token and a Nightscout site.
JAR="$WORK/cookies"
curl -fs -c "$JAR" -H 'content-type: application/json' \
  -d '{"email":"demo.patient@diabase.example","password":"glucose-demo-patient-2026"}' "$BASE/api/v1/auth/login" >/dev/null
TOKEN=$(curl -fs -b "$JAR" -H 'content-type: application/json' -d '{"name":"schemathesis","scopes":["full"]}' \
  "$BASE/api/v1/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
SECRET=$(curl -fs -b "$JAR" -X POST "$BASE/api/v1/me/nightscout" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
NS_HASH=$(printf %s "$SECRET" | sha1sum | cut -c1-40)

# The document as served, with each path's own base (`/api/v1`, or
# `/api/v2`, `/api/v3` for the Nightscout paths that name their own servers)
# written into the path: Schemathesis runs from one base URL.
curl -fs "$BASE/api/v1/openapi.json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
base = d["servers"][0]["url"]
d["paths"] = {item.pop("servers", [{"url": base}])[0]["url"] + path: item for path, item in d["paths"].items()}
d["servers"] = [{"url": "/"}]
json.dump(d, sys.stdout)' > "$WORK/openapi.json"

echo "Schemathesis $ST_VERSION against $BASE for ${SECONDS_BUDGET}s, seed $SEED (replay: ST_SEED=$SEED make schemathesis)"
set +e
# From the scratch folder: Schemathesis keeps a cache in its working directory.
cd "$WORK"
"$VENV/bin/st" run "$WORK/openapi.json" \
  --url "$BASE" \
  -H "Authorization: Bearer $TOKEN" -H "api-secret: $NS_HASH" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --exclude-path /api/v1/me --exclude-path /api/v1/auth/logout-all --exclude-path-regex '^/api/v1/me/(sessions|2fa)' \
  --phases examples,coverage,fuzzing \
  --max-time "$SECONDS_BUDGET" --workers 2 --seed "$SEED" --generation-database none \
  --suppress-health-check all --warnings off \
  --report junit --report-dir "$WORK/report" --no-color
RC=$?
set -e
echo "Schemathesis report (JUnit):"
cat "$WORK"/report/*.xml 2>/dev/null | head -c 20000 || true
if [ $RC -ne 0 ]; then
  echo "server log (tail):" >&2
  tail -50 "$WORK/server.log" >&2
fi
exit $RC
