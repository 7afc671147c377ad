-- Account security: two-factor authentication (TOTP, RFC 6238) with
-- single-use recovery codes, and emailed password-reset tokens.

-- One authenticator per user. The shared secret is sealed with the field
-- cipher (enc1:…); confirmed_ms stays NULL until a code from the app proved
-- the user holds it, and only a confirmed secret is asked for at log-in.
-- last_step is the newest 30-second step accepted: a code is used once.
CREATE TABLE totp (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    confirmed_ms BIGINT,
    last_step BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);

-- Ten single-use recovery codes per user, stored as SHA-256 hashes.
CREATE TABLE recovery_codes (
    code_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    used_ms BIGINT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- Password-reset links: a random token sent by email, stored hashed,
-- single use, valid 24 hours.
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    used_ms BIGINT
);
CREATE INDEX password_resets_user ON password_resets (user_id);

-- A clinic may require two-factor authentication of its members.
ALTER TABLE clinics ADD COLUMN require_2fa BOOLEAN NOT NULL DEFAULT FALSE;
