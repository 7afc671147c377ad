-- Every foreign key gets an index that starts with its columns (issue 23).
-- Without them, deleting an upload (ON DELETE CASCADE), a device (SET NULL)
-- or an account, and the custodial merge (device_id moved to the linked
-- record), scanned the whole of glucose and therapy_events.
-- crates/store/tests/indexes.rs fails when a foreign key has none.
CREATE INDEX glucose_upload ON glucose (upload_id);
CREATE INDEX glucose_device ON glucose (device_id);
CREATE INDEX therapy_events_upload ON therapy_events (upload_id);
CREATE INDEX therapy_events_device ON therapy_events (device_id);
CREATE INDEX uploads_device ON uploads (device_id);
CREATE INDEX uploads_blob ON uploads (blob_sha256);
CREATE INDEX uploads_uploaded_by ON uploads (uploaded_by);
CREATE INDEX clinic_members_user ON clinic_members (user_id);
CREATE INDEX link_codes_clinic ON link_codes (clinic_id);
CREATE INDEX upload_requests_clinic ON upload_requests (clinic_id);
CREATE INDEX webauthn_challenges_user ON webauthn_challenges (user_id);
