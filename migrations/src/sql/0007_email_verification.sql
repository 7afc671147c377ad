-- Email verification at sign-up: an emailed single-use link (token stored
-- as its SHA-256 hash, valid 7 days). Until the address is confirmed, clinic
-- invitations to it are not joined. Accounts that exist before this
-- migration, and accounts an operator creates, count as confirmed.
ALTER TABLE users ADD COLUMN email_verified_ms BIGINT;
UPDATE users SET email_verified_ms = created_ms;

CREATE TABLE email_verifications (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    used_ms BIGINT
);
CREATE INDEX email_verifications_user ON email_verifications (user_id);
