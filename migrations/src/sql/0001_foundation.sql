-- Diabase schema, first migration. Written once for both SQLite and PostgreSQL:
-- {{PK}} is an auto-increment 64-bit key, {{BLOB}} a byte string.
-- Times are integers: milliseconds since the Unix epoch, UTC (`*_ms`), so that
-- comparisons and indexes behave the same on both backends.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('patient', 'clinician', 'admin')),
    glucose_unit TEXT NOT NULL DEFAULT 'mg/dL',
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    password_changed_ms BIGINT NOT NULL
);

-- A patient's data space: owned by a user account, or custodial (a clinic's
-- record for someone without an account; user_id NULL).
CREATE TABLE patients (
    id TEXT PRIMARY KEY,
    user_id TEXT UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    created_ms BIGINT NOT NULL
);

-- Server-side sessions: the cookie holds a random 256-bit id; only its
-- SHA-256 is stored.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    user_agent TEXT,
    ip TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Personal access tokens: shown once, stored as SHA-256.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    last_used_ms BIGINT,
    expires_ms BIGINT,
    revoked_ms BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Fixed-window counters shared by every server process.
CREATE TABLE rate_limits (
    bucket TEXT PRIMARY KEY,
    window_start_ms BIGINT NOT NULL,
    hits INTEGER NOT NULL
);

CREATE TABLE clinics (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE clinic_members (
    clinic_id TEXT NOT NULL REFERENCES clinics(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('clinician', 'admin')),
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (clinic_id, user_id)
);

-- A clinic's record of a patient; links to a patient data space.
CREATE TABLE patient_records (
    id TEXT PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id) ON DELETE CASCADE,
    patient_id TEXT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    birth_date TEXT,
    mrn TEXT,
    linked_user INTEGER NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL
);
CREATE INDEX patient_records_clinic ON patient_records (clinic_id);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    manufacturer TEXT NOT NULL,
    model TEXT NOT NULL,
    serial TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (patient_id, manufacturer, model, serial)
);

-- Raw uploaded bytes, content-addressed, so a better decoder can re-derive data.
CREATE TABLE raw_blobs (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    bytes {{BLOB}} NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    uploaded_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    source TEXT NOT NULL,
    format TEXT NOT NULL,
    file_name TEXT,
    blob_sha256 TEXT REFERENCES raw_blobs(sha256),
    device_id TEXT REFERENCES devices(id) ON DELETE SET NULL,
    time_zone TEXT NOT NULL,
    clock_offset_s BIGINT NOT NULL DEFAULT 0,
    counts_json TEXT NOT NULL,
    duplicates BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    first_ms BIGINT,
    last_ms BIGINT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX uploads_patient ON uploads (patient_id, created_ms);

-- Glucose readings: CGM, fingerstick BG, calibrations. Integer mg/dL.
-- source_rank orders sources covering the same instant: 0 device upload,
-- 1 file import, 2 live API. dedup is a hash of (device, kind, device
-- time, value): re-imports add nothing twice.
CREATE TABLE glucose (
    id {{PK}},
    patient_id TEXT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    device_id TEXT REFERENCES devices(id) ON DELETE SET NULL,
    upload_id TEXT REFERENCES uploads(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    bg_source TEXT,
    source_rank SMALLINT NOT NULL,
    time_ms BIGINT NOT NULL,
    device_time TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    clock_offset_s BIGINT NOT NULL,
    value_mg_dl INTEGER NOT NULL,
    trend TEXT,
    out_of_range TEXT,
    dedup TEXT NOT NULL,
    UNIQUE (patient_id, dedup)
);
CREATE INDEX glucose_patient_time ON glucose (patient_id, time_ms);

-- Every other normalised record (boluses, wizard, basal, temp basal,
-- suspend/resume, carbs, prime, rewind, alarms, sensor events, time changes,
-- daily totals, settings, notes, unknown pump ops). Hot values are columns;
-- the whole normalised record is kept as JSON so nothing is lost.
CREATE TABLE therapy_events (
    id {{PK}},
    patient_id TEXT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    device_id TEXT REFERENCES devices(id) ON DELETE SET NULL,
    upload_id TEXT REFERENCES uploads(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    source_rank SMALLINT NOT NULL,
    time_ms BIGINT NOT NULL,
    device_time TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    clock_offset_s BIGINT NOT NULL,
    amount DOUBLE PRECISION,
    duration_min INTEGER,
    record_json TEXT NOT NULL,
    dedup TEXT NOT NULL,
    UNIQUE (patient_id, dedup)
);
CREATE INDEX therapy_events_patient_time ON therapy_events (patient_id, kind, time_ms);

-- Append-only, hash-chained audit trail: hash = SHA-256(prev_hash | fields).
CREATE TABLE audit_log (
    seq {{PK}},
    at_ms BIGINT NOT NULL,
    actor_user_id TEXT,
    patient_id TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    ip TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_patient ON audit_log (patient_id, at_ms);
CREATE INDEX audit_log_actor ON audit_log (actor_user_id, at_ms);
