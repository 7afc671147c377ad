-- Sharing and the clinic workspace: grants, one-time link codes, care-partner
-- invitations, clinic invitations, upload requests and per-day aggregates.

-- The clinic-side record: its name, date of birth and MRN are encrypted at
-- rest (store::crypto); mrn_index is a keyed hash of the normalised MRN so a
-- clinic can refuse duplicates without decrypting. grant_id is the grant the
-- patient gave when they linked their account (NULL while custodial).
ALTER TABLE patient_records ADD COLUMN mrn_index TEXT;
ALTER TABLE patient_records ADD COLUMN grant_id TEXT;
ALTER TABLE patient_records ADD COLUMN created_by TEXT;
ALTER TABLE patient_records ADD COLUMN link_state TEXT NOT NULL DEFAULT 'custodial';
CREATE INDEX patient_records_patient ON patient_records (patient_id);

-- What a patient shares, with whom: a clinic (grantee_clinic_id) or one
-- person (grantee_user_id, a care partner). A care-partner invitation is a
-- grant with invite_email set and no grantee yet. scopes is a comma list of
-- glucose, insulin, settings, events. Access holds while accepted, not
-- revoked and not expired; the policy reads this table on every request.
CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    grantee_clinic_id TEXT REFERENCES clinics(id) ON DELETE CASCADE,
    grantee_user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    record_id TEXT,
    invite_email TEXT,
    invite_token_hash TEXT UNIQUE,
    invite_expires_ms BIGINT,
    scopes TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    accepted_ms BIGINT,
    expires_ms BIGINT,
    revoked_ms BIGINT
);
CREATE INDEX grants_patient ON grants (patient_id);
CREATE INDEX grants_clinic ON grants (grantee_clinic_id, patient_id);
CREATE INDEX grants_user ON grants (grantee_user_id, patient_id);
CREATE INDEX grants_invite_email ON grants (invite_email);

-- One-time link codes: only the SHA-256 of the normalised code is stored.
CREATE TABLE link_codes (
    code_hash TEXT PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id) ON DELETE CASCADE,
    record_id TEXT NOT NULL REFERENCES patient_records(id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    created_by TEXT,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    used_ms BIGINT,
    used_by TEXT,
    outcome TEXT
);
CREATE INDEX link_codes_record ON link_codes (record_id);

-- Colleagues invited to a clinic before they had an account: joined when an
-- account with that email signs up or logs in.
CREATE TABLE clinic_invites (
    clinic_id TEXT NOT NULL REFERENCES clinics(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('clinician', 'admin')),
    invited_by TEXT,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (clinic_id, email)
);

-- "Please upload": an in-app notice on the patient's dashboard until the
-- patient uploads after it, or dismisses it.
CREATE TABLE upload_requests (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    clinic_id TEXT NOT NULL REFERENCES clinics(id) ON DELETE CASCADE,
    record_id TEXT NOT NULL,
    requested_by TEXT,
    created_ms BIGINT NOT NULL,
    done_ms BIGINT
);
CREATE INDEX upload_requests_patient ON upload_requests (patient_id, done_ms);

-- Per local day CGM aggregates, refreshed at import, so dashboards never scan
-- raw readings. day is YYYY-MM-DD in the patient's zone; sums are over the
-- readings a report counts (one source per instant); expected is the number
-- of 5-minute readings the day could hold (DST-aware).
CREATE TABLE daily_glucose (
    patient_id TEXT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    day TEXT NOT NULL,
    readings INTEGER NOT NULL,
    slots INTEGER NOT NULL,
    expected INTEGER NOT NULL,
    sum_mg_dl BIGINT NOT NULL,
    sum_sq_mg_dl BIGINT NOT NULL,
    very_low INTEGER NOT NULL,
    low INTEGER NOT NULL,
    in_range INTEGER NOT NULL,
    high INTEGER NOT NULL,
    very_high INTEGER NOT NULL,
    PRIMARY KEY (patient_id, day)
);
