-- The audit log's sealed head (issue 19, item 9): kept outside the audited
-- rows, one row (id 1), updated in the same transaction as every append:
-- how many entries the log holds, the last one's seq and hash, and an
-- HMAC-SHA256 over them under a key derived from the field-encryption key
-- file. `diabase audit verify` checks the chain ends where the head says,
-- so removing the newest entries no longer goes unnoticed. The row starts
-- unsealed (mac ''): the process that applies this migration seals it over
-- the log as it stands (an upgraded database's existing rows included).
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    count BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL,
    mac TEXT NOT NULL
);
INSERT INTO audit_head (id, count, last_seq, last_hash, mac) VALUES (1, 0, 0, '0000000000000000000000000000000000000000000000000000000000000000', '');
