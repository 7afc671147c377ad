# Diabase: the two commands a newcomer needs.
#   make run   install what is missing, build, serve on SQLite with demo data
#   make test  install what is missing, run every test
# Both are idempotent: what is already installed is skipped.

SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

CARGO_LEPTOS_VERSION := 0.3.10
# The wasm-bindgen CLI must match the library version in Cargo.lock.
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
# Builds are kept outside the clone so a fresh clone on the same machine reuses them.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/diabase/target
export PATH := $(CURDIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
ADDR ?= 127.0.0.1:3000
SERVER_BIN := $(CARGO_TARGET_DIR)/server-release/diabase

.PHONY: run test tools test-tools site build unit e2e schemathesis sim-wasm fuzz-smoke bench bench-web clean postgres chromium fhir-validator pdf-tools

run: tools site
	mkdir -p data
	echo "Starting Diabase on http://$(ADDR) (SQLite: data/diabase.sqlite)"
	LEPTOS_SITE_ROOT=target/site exec "$(SERVER_BIN)" serve --addr $(ADDR) --demo

test: tools test-tools
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory site
	$(MAKE) --no-print-directory e2e
	$(MAKE) --no-print-directory schemathesis
	$(MAKE) --no-print-directory fuzz-smoke

## ---- tools ---------------------------------------------------------------

tools:
	if ! command -v cargo >/dev/null; then echo "Rust (rustup) is required: https://rustup.rs" >&2; exit 1; fi
	rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
	rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
	if ! cargo leptos --version 2>/dev/null | grep -q "$(CARGO_LEPTOS_VERSION)"; then
	  echo "Installing cargo-leptos $(CARGO_LEPTOS_VERSION) (about 11 minutes, once per machine)"
	  cargo install --locked cargo-leptos --version $(CARGO_LEPTOS_VERSION)
	fi
	if ! wasm-bindgen --version 2>/dev/null | grep -q "$(WASM_BINDGEN_VERSION)"; then
	  echo "Installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION)"
	  cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --force
	fi
	# OpenSSL headers for webauthn-rs (passkeys) and the tests' software authenticator.
	if ! pkg-config --exists openssl 2>/dev/null; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev pkg-config; fi
	if ! command -v npm >/dev/null; then apt-get update -qq && apt-get install -y -qq nodejs npm; fi
	if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	  npm ci --no-audit --no-fund
	fi

test-tools: chromium postgres fhir-validator pdf-tools

# The FHIR R4 validator the export tests use (fhir.resources 6.1 = FHIR 4.0.1, on pydantic 1).
FHIR_VENV := $(HOME)/.cache/diabase/fhir-venv
fhir-validator:
	if ! "$(FHIR_VENV)/bin/python" -c 'import fhir.resources' 2>/dev/null; then
	  python3 -m venv "$(FHIR_VENV)"
	  "$(FHIR_VENV)/bin/pip" install -q 'fhir.resources==6.1.0' 'pydantic[email]>=1.10,<2'
	fi

chromium:
	if ! command -v chromium >/dev/null; then
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
	fi
	command -v pdftoppm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils) || true

# qpdf and poppler's pdftotext / pdfinfo check the password-protected (AES-256) report PDF.
pdf-tools:
	if ! command -v qpdf >/dev/null || ! command -v pdftotext >/dev/null; then
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qpdf poppler-utils
	fi

postgres:
	if ! command -v pg_ctlcluster >/dev/null; then
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
	fi
	if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -1) main start || true
	  for i in $$(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
	fi
	# Tests connect as postgres over TCP without a password (trust), as on these machines.
	psql -h 127.0.0.1 -U postgres -c 'select 1' -q -o /dev/null || {
	  echo "PostgreSQL on 127.0.0.1:5432 must accept user postgres without a password (trust auth) for the tests" >&2; exit 1; }

## ---- build -----------------------------------------------------------------

public/echarts.min.js: node_modules/echarts/dist/echarts.min.js
	cp $< $@

# The release build, then a brotli and a gzip copy of every text and wasm
# file for the server to send as they are (issue 21).
site: public/echarts.min.js
	cargo leptos build --release
	node frontend/precompress.mjs target/site

build: tools site

## ---- tests -------------------------------------------------------------------

# Hygiene gates first (issue 24): formatting, then clippy with warnings as
# errors on every target (the browser crates for wasm, where they run).
unit:
	cargo fmt --all --check
	cargo fmt --manifest-path fuzz/Cargo.toml --all --check
	cargo clippy --workspace --exclude frontend --all-targets -- -D warnings
	cargo clippy -p frontend -p minimed-sim-wasm --target wasm32-unknown-unknown -- -D warnings
	cargo test --workspace --exclude frontend

e2e: sim-wasm
	DIABASE_BIN="$(SERVER_BIN)" LEPTOS_SITE_ROOT=target/site SIM_WASM_DIR=target/sim-wasm node --test --test-concurrency=1 end2end/

# The MiniMed stick + pump simulator as a wasm module, for the browser tests' navigator.usb shim
# (only the tests load it; the site never does).
sim-wasm:
	cargo build -p minimed-sim-wasm --target wasm32-unknown-unknown --profile wasm-release
	wasm-bindgen --target web --no-typescript --out-dir target/sim-wasm "$(CARGO_TARGET_DIR)/wasm32-unknown-unknown/wasm-release/minimed_sim_wasm.wasm"

# Schemathesis (PyPI, pinned in the script) against the served API for a few
# minutes: no server error, no undocumented status or content type, no
# response outside its schema. ST_SEED=<n> replays a run; ST_SECONDS sets its length.
schemathesis:
	DIABASE_BIN="$(SERVER_BIN)" bench/schemathesis.sh

fuzz-smoke:
	@if [ -x bench/fuzz-smoke.sh ]; then bench/fuzz-smoke.sh; else echo "no fuzz targets yet"; fi

bench:
	cargo bench --workspace --exclude frontend

# Lighthouse 12 (npm, pinned in the script) on the release build with the
# demo data: bytes sent and scores per page (issue 21). LH_RUNS=3 for medians.
bench-web: tools chromium site
	DIABASE_BIN="$(SERVER_BIN)" bench/web.sh

clean:
	cargo clean
	rm -rf target/site public/echarts.min.js
