-- Passkeys (WebAuthn, webauthn-rs): any number per user, named.
-- user_handle is the WebAuthn user id (a UUID derived from the user id) that a
-- discoverable credential hands back at sign-in; credential_id is the
-- credential's id, base64url; passkey_json is webauthn-rs' Passkey (public
-- key, counter, backup state), updated after each use.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_handle TEXT NOT NULL,
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    passkey_json TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_used_ms BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- WebAuthn ceremonies in progress, kept server-side (any process can finish
-- one), each used once and valid for five minutes. user_id is set for a
-- registration; a sign-in does not know the user until the answer.
CREATE TABLE webauthn_challenges (
    id TEXT PRIMARY KEY,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('register', 'login')),
    state_json TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_ms);
