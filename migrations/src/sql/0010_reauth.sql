-- Re-authentication (issue 19, item 4): when the session's password (or
-- passkey) was last checked: set when the session opens and by
-- `POST /api/v1/me/reauth`. Sensitive changes need it within 5 minutes.
-- Sessions opened before this migration count as checked when they opened.
ALTER TABLE sessions ADD COLUMN auth_ms BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET auth_ms = created_ms;
