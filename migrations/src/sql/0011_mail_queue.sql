-- The durable mail queue (issue 19, item 6): a request only inserts a row
-- (the same time whether or not mail goes out, so the answer reveals no
-- account); a background worker of every server process claims due rows
-- (a conditional UPDATE of claimed_until_ms, so several processes can
-- share the database), delivers them through SMTP or the outbox, and
-- retries with exponential backoff. Recipient and body are sealed with the
-- field key (bodies hold live reset links) and the body is blanked once the
-- message has left or has been given up.
CREATE TABLE mail_queue (
    id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    claimed_until_ms BIGINT NOT NULL DEFAULT 0,
    sent_ms BIGINT,
    failed_ms BIGINT,
    last_error TEXT
);
CREATE INDEX mail_queue_due ON mail_queue (next_attempt_ms);
