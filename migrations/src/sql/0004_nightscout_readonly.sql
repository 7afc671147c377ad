-- A read-only access token per Nightscout site, for followers and readers
-- (xDrip+ follower, Nightscout watch faces): it reads, it never writes.
ALTER TABLE nightscout_sites ADD COLUMN read_token_hash TEXT;
CREATE INDEX nightscout_sites_read_token ON nightscout_sites (read_token_hash);
