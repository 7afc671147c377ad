#!/usr/bin/env bash
# Runs every cargo-fuzz target briefly on a corpus seeded from the shared
# fixtures (make test). Long fuzzing runs are done by hand:
#   cargo +nightly fuzz run import_carelink fuzz/corpus/import_carelink
# Needs the nightly toolchain (cargo fuzz builds with sanitizers); without it
# the smoke run is skipped with a message, the property tests still run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${FUZZ_SECONDS:-15}"
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "SKIP fuzz smoke: no nightly toolchain on this machine (property tests cover the parsers)"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "Installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
FIX=../shared/fixtures
seed() { # target, then fixture globs
  local t=$1; shift
  mkdir -p "fuzz/corpus/$t"
  if [ -d "$FIX" ]; then
    for g in "$@"; do
      for f in $FIX/$g; do
        [ -f "$f" ] || continue
        # Small seeds: the first 16 KB of each file.
        head -c 16384 "$f" > "fuzz/corpus/$t/$(echo "$f" | sha1sum | cut -c1-16)"
      done
    done
  elif [ "${CI:-}" = "true" ]; then
    echo "fixtures missing under CI=true" >&2; exit 1
  fi
}
seed import_detect 'carelink-csv/*/*.csv' 'dexcom-clarity-csv/*/*.csv' 'libre-csv/*/*.csv' 'nightscout/*/*.json' 'nightscout/*/*.csv'
seed import_carelink 'carelink-csv/*/*.csv' 'carelink-csv/tidepool-uploader/*/*/*.csv' 'carelink-csv/tidepool-uploader/*/*/*/*.csv'
seed import_clarity 'dexcom-clarity-csv/*/*.csv'
seed import_libre 'libre-csv/*/*.csv'
seed import_nightscout 'nightscout/*/*.json' 'nightscout/*/*.csv'
# MiniMed pages: `.data` files as they are, `.hex` files decoded to their 1024 bytes.
mkdir -p fuzz/corpus/minimed_pages
if [ -d "$FIX/minimed-pages" ]; then
  for f in "$FIX"/minimed-pages/*/*.data "$FIX"/minimed-pages/*/*.hex; do
    [ -f "$f" ] || continue
    out="fuzz/corpus/minimed_pages/$(echo "$f" | sha1sum | cut -c1-16)"
    case "$f" in
      *.hex)
        if command -v xxd >/dev/null 2>&1; then
          xxd -r -p "$f" > "$out"
        else # bash's printf turns \xHH into bytes (NUL included)
          printf "$(tr -d '\n' < "$f" | sed 's/../\\x&/g')" > "$out"
        fi ;;
      *) cp "$f" "$out" ;;
    esac
  done
elif [ "${CI:-}" = "true" ]; then
  echo "fixtures missing under CI=true" >&2; exit 1
fi
# Device uploads: the binary pages, the hex pages as text, and one pump dump per hex page.
mkdir -p fuzz/corpus/minimed_dump
cp fuzz/corpus/minimed_pages/* fuzz/corpus/minimed_dump/ 2>/dev/null || true
if [ -d "$FIX/minimed-pages" ]; then
  for f in "$FIX"/minimed-pages/*/*.hex; do
    [ -f "$f" ] || continue
    h=$(echo "$f" | sha1sum | cut -c1-16)
    cp "$f" "fuzz/corpus/minimed_dump/hex-$h"
    printf '{"format":"minimed_pages","device":{"model":"522","serial":"578398"},"clock":{"pump":"2015-04-29T20:17:36","utc":"2015-04-30T03:12:36Z"},"responses":{"settings":"00"},"history_pages":[{"number":0,"hex":"%s"}],"glucose_pages":[]}' \
      "$(tr -d '\n' < "$f")" > "fuzz/corpus/minimed_dump/dump-$h"
  done
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/fuzz"
for t in import_detect import_carelink import_clarity import_libre import_nightscout minimed_pages minimed_dump; do
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s"
  cargo +nightly fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -print_final_stats=0 2>&1 | tail -n 3
done
echo "fuzz smoke: all targets ran without a crash"
