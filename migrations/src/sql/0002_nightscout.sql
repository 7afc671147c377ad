-- Nightscout-compatible API. Written once for both SQLite and PostgreSQL
-- ({{PK}} is an auto-increment 64-bit key). Times are epoch milliseconds, UTC.

-- One Nightscout "site" per patient. The API secret is kept only as its
-- SHA-1 hex, because Nightscout clients send exactly that in the `api-secret`
-- header (the secret itself is random, ~144 bits); the access token only as
-- SHA-256 hex. jwt_key signs the JWTs of /api/v2/authorization (HMAC-SHA256);
-- all three are replaced when the site is rotated, the slug stays.
CREATE TABLE nightscout_sites (
    patient_id TEXT PRIMARY KEY REFERENCES patients(id) ON DELETE CASCADE,
    slug TEXT NOT NULL UNIQUE,
    secret_sha1 TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    jwt_key TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    rotated_ms BIGINT NOT NULL
);

-- The Nightscout documents as the clients sent them (entries, treatments,
-- devicestatus, profile, food, settings). ns_id is the `_id` (24 hex when we
-- make it); identifier the API v3 identifier a client chose, if any; dedup the
-- natural key a re-post without `_id` is matched on (entries: date, type and
-- device; treatments: created_at and eventType; unique, NULL when none); kind the entry type or
-- treatment eventType. date_ms is the document's instant; modified_ms its
-- srvModified (strictly increasing per patient, for API v3 history); a
-- deleted document stays as a tombstone (deleted_ms) so that API v3 history
-- can report the deletion.
CREATE TABLE nightscout_docs (
    id {{PK}},
    patient_id TEXT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    collection TEXT NOT NULL,
    ns_id TEXT NOT NULL,
    identifier TEXT,
    dedup TEXT,
    kind TEXT,
    date_ms BIGINT NOT NULL,
    doc_json TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    modified_ms BIGINT NOT NULL,
    deleted_ms BIGINT,
    UNIQUE (patient_id, collection, ns_id)
);
CREATE INDEX nightscout_docs_date ON nightscout_docs (patient_id, collection, date_ms);
CREATE INDEX nightscout_docs_modified ON nightscout_docs (patient_id, collection, modified_ms);
CREATE UNIQUE INDEX nightscout_docs_dedup ON nightscout_docs (patient_id, collection, dedup);
CREATE INDEX nightscout_docs_identifier ON nightscout_docs (patient_id, collection, identifier);
