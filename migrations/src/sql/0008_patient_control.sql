-- Patient control (issue 8).
--
-- Scoped personal access tokens: what a token may do. Tokens made before
-- scopes existed keep the full access they were made with.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'full';

-- "Pause all sharing": a paused grant gives no access until it is resumed;
-- its scopes and expiry are kept.
ALTER TABLE grants ADD COLUMN paused_ms BIGINT;

-- Sharing with a provider by their verified email: the provider's name and
-- clinic as the patient typed them (shown to both sides).
ALTER TABLE grants ADD COLUMN provider_name TEXT;
ALTER TABLE grants ADD COLUMN provider_clinic TEXT;

-- Each clinic's share code (XXXX-XXXX-XXXX), with which a patient shares
-- with the clinic on their own initiative. Not secret (entering it can only
-- give the clinic data), but rate-limited and rotatable by the clinic.
ALTER TABLE clinics ADD COLUMN share_code TEXT;
CREATE UNIQUE INDEX clinics_share_code ON clinics (share_code);

-- The login history: every sign-in and failed sign-in of an account, with
-- the browser, the address and whether the browser was new to the account.
CREATE TABLE login_events (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    at_ms BIGINT NOT NULL,
    method TEXT NOT NULL,
    success INTEGER NOT NULL,
    new_device INTEGER NOT NULL,
    ip TEXT,
    user_agent TEXT
);
CREATE INDEX login_events_user ON login_events (user_id, at_ms);

-- Browsers an account has signed in from (a long-lived random cookie, stored
-- hashed), so that a sign-in from a new one can be mailed to the owner.
CREATE TABLE known_devices (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_hash TEXT NOT NULL,
    first_ms BIGINT NOT NULL,
    last_ms BIGINT NOT NULL,
    user_agent TEXT,
    PRIMARY KEY (user_id, device_hash)
);
