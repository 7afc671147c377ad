//! Diabase schema migrations. Each migration is one SQL file written for both
//! SQLite and PostgreSQL, with two placeholders for the types that differ.

pub use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

mod m0001_foundation {
    use super::*;

    pub struct Migration;

    // Named explicitly: DeriveMigrationName would name every migration in
    // this file "lib".
    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0001_foundation"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, include_str!("sql/0001_foundation.sql")).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(
                manager,
                "DROP TABLE audit_log; DROP TABLE therapy_events; DROP TABLE glucose; \
                 DROP TABLE uploads; DROP TABLE raw_blobs; DROP TABLE devices; \
                 DROP TABLE patient_records; DROP TABLE clinic_members; DROP TABLE clinics; \
                 DROP TABLE rate_limits; DROP TABLE api_tokens; DROP TABLE sessions; \
                 DROP TABLE patients; DROP TABLE users;",
            )
            .await
        }
    }
}

mod m0002_nightscout {
    use super::*;

    pub struct Migration;

    // Named explicitly: DeriveMigrationName would name every migration in
    // this file "lib".
    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0002_nightscout"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, include_str!("sql/0002_nightscout.sql")).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, "DROP TABLE nightscout_docs; DROP TABLE nightscout_sites;").await
        }
    }
}

mod m0003_sharing {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0003_sharing"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, include_str!("sql/0003_sharing.sql")).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(
                manager,
                "DROP TABLE daily_glucose; DROP TABLE upload_requests; DROP TABLE clinic_invites; \
                 DROP TABLE link_codes; DROP TABLE grants; DROP INDEX patient_records_patient; \
                 ALTER TABLE patient_records DROP COLUMN link_state; ALTER TABLE patient_records DROP COLUMN created_by; \
                 ALTER TABLE patient_records DROP COLUMN grant_id; ALTER TABLE patient_records DROP COLUMN mrn_index;",
            )
            .await
        }
    }
}

mod m0004_nightscout_readonly {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0004_nightscout_readonly"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, include_str!("sql/0004_nightscout_readonly.sql")).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(
                manager,
                "DROP INDEX nightscout_sites_read_token; ALTER TABLE nightscout_sites DROP COLUMN read_token_hash;",
            )
            .await
        }
    }
}

mod m0005_account_security {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0005_account_security"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, include_str!("sql/0005_account_security.sql")).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(
                manager,
                "ALTER TABLE clinics DROP COLUMN require_2fa; DROP TABLE password_resets; \
                 DROP TABLE recovery_codes; DROP TABLE totp;",
            )
            .await
        }
    }
}

/// Runs a `;`-separated SQL script, substituting the backend's types.
async fn run_sql(manager: &SchemaManager<'_>, script: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let (pk, blob) = match db.get_database_backend() {
        DbBackend::Postgres => ("BIGSERIAL PRIMARY KEY", "BYTEA"),
        _ => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
    };
    let script = script.replace("{{PK}}", pk).replace("{{BLOB}}", blob);
    for stmt in split_statements(&script) {
        db.execute_unprepared(&stmt).await?;
    }
    Ok(())
}

/// Splits a script on `;` at the end of statements, dropping `--` comments.
fn split_statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in script.lines() {
        let line = match line.find("--") {
            Some(i) => &line[..i],
            None => line,
        };
        cur.push_str(line);
        cur.push('\n');
        if line.trim_end().ends_with(';') {
            let s = cur.trim().trim_end_matches(';').trim().to_string();
            if !s.is_empty() {
                out.push(s);
            }
            cur.clear();
        }
    }
    let s = cur.trim().to_string();
    if !s.is_empty() {
        out.push(s);
    }
    out
}

mod m0006_passkeys {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0006_passkeys"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, include_str!("sql/0006_passkeys.sql")).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, "DROP TABLE webauthn_challenges; DROP TABLE passkeys;").await
        }
    }
}

mod m0007_email_verification {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0007_email_verification"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, include_str!("sql/0007_email_verification.sql")).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, "DROP TABLE email_verifications; ALTER TABLE users DROP COLUMN email_verified_ms;").await
        }
    }
}

mod m0008_patient_control {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0008_patient_control"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, include_str!("sql/0008_patient_control.sql")).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(
                manager,
                "DROP TABLE known_devices; DROP TABLE login_events; DROP INDEX clinics_share_code; \
                 ALTER TABLE clinics DROP COLUMN share_code; ALTER TABLE grants DROP COLUMN paused_ms; \
                 ALTER TABLE grants DROP COLUMN provider_name; ALTER TABLE grants DROP COLUMN provider_clinic; \
                 ALTER TABLE api_tokens DROP COLUMN scopes;",
            )
            .await
        }
    }
}

mod m0009_language {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0009_language"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, include_str!("sql/0009_language.sql")).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, "ALTER TABLE users DROP COLUMN language;").await
        }
    }
}

mod m0010_reauth {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0010_reauth"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, include_str!("sql/0010_reauth.sql")).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, "ALTER TABLE sessions DROP COLUMN auth_ms;").await
        }
    }
}

mod m0011_mail_queue {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0011_mail_queue"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, include_str!("sql/0011_mail_queue.sql")).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, "DROP TABLE mail_queue;").await
        }
    }
}

mod m0012_audit_head {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0012_audit_head"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, include_str!("sql/0012_audit_head.sql")).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, "DROP TABLE audit_head;").await
        }
    }
}

mod m0013_entries_natural_key {
    //! Nightscout matches a re-posted entry on (sysTime, type), whichever
    //! client sent it; Diabase's key also held the device, so the same
    //! reading from xDrip+ and from Loop was kept twice (issue 24). The
    //! stored entries' natural key becomes `<date_ms>|<type>`. Where two
    //! documents now share a key, the newest live one keeps it; the others
    //! lose the key, and the live ones among them are deleted as Nightscout's
    //! upsert would have replaced them: a tombstone with a new srvModified,
    //! so API v3 history clients see the deletion. Reports counted each
    //! instant once already, so no report changes.
    use super::*;
    use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0013_entries_natural_key"
        }
    }

    const COLLIDING: &str = "SELECT d.id, d.patient_id, d.modified_ms, \
            CAST(CASE WHEN d.deleted_ms IS NULL THEN 1 ELSE 0 END AS BIGINT) AS live, \
            CAST(d.date_ms AS TEXT) || '|' || COALESCE(d.kind, '') AS k \
        FROM nightscout_docs d \
        JOIN (SELECT patient_id, date_ms, COALESCE(kind, '') AS k FROM nightscout_docs \
              WHERE collection = 'entries' AND dedup IS NOT NULL \
              GROUP BY patient_id, date_ms, COALESCE(kind, '') HAVING COUNT(*) > 1) g \
          ON d.patient_id = g.patient_id AND d.date_ms = g.date_ms AND COALESCE(d.kind, '') = g.k \
        WHERE d.collection = 'entries' AND d.dedup IS NOT NULL \
        ORDER BY d.patient_id, k, live DESC, d.modified_ms DESC, d.id DESC";

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            let be = db.get_database_backend();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| <i64 as TryFrom<u128>>::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            let rows = db.query_all_raw(Statement::from_string(be, COLLIDING)).await?;
            let mut next_modified: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
            let mut last_key: Option<(String, String)> = None;
            for r in rows {
                let id: i64 = r.try_get("", "id")?;
                let patient: String = r.try_get("", "patient_id")?;
                let live: i64 = r.try_get("", "live")?;
                let k: String = r.try_get("", "k")?;
                let key = (patient.clone(), k);
                if last_key.as_ref() != Some(&key) {
                    last_key = Some(key);
                    continue; // the first of a key keeps it
                }
                if live == 1 {
                    let m = match next_modified.get(&patient) {
                        Some(m) => *m,
                        None => {
                            let max = db
                                .query_one_raw(Statement::from_string(
                                    be,
                                    format!(
                                        "SELECT MAX(d.modified_ms) AS m FROM nightscout_docs d \
                                         JOIN nightscout_docs o ON o.patient_id = d.patient_id AND o.id = {id} \
                                         WHERE d.collection = 'entries'"
                                    ),
                                ))
                                .await?
                                .and_then(|row| row.try_get::<Option<i64>>("", "m").ok().flatten())
                                .unwrap_or(0);
                            std::cmp::max(max, now) + 1
                        }
                    };
                    next_modified.insert(patient, m + 1);
                    db.execute_unprepared(&format!(
                        "UPDATE nightscout_docs SET dedup = NULL, deleted_ms = {now}, modified_ms = {m} WHERE id = {id}"
                    ))
                    .await?;
                } else {
                    db.execute_unprepared(&format!("UPDATE nightscout_docs SET dedup = NULL WHERE id = {id}")).await?;
                }
            }
            db.execute_unprepared(
                "UPDATE nightscout_docs SET dedup = CAST(date_ms AS TEXT) || '|' || COALESCE(kind, '') \
                 WHERE collection = 'entries' AND dedup IS NOT NULL",
            )
            .await?;
            Ok(())
        }

        async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
            // The device is not part of the key any more; re-posts match on the new key.
            Ok(())
        }
    }
}

mod m0014_foreign_key_indexes {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0014_foreign_key_indexes"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(manager, include_str!("sql/0014_foreign_key_indexes.sql")).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            run_sql(
                manager,
                "DROP INDEX glucose_upload; DROP INDEX glucose_device; DROP INDEX therapy_events_upload; \
                 DROP INDEX therapy_events_device; DROP INDEX uploads_device; DROP INDEX uploads_blob; \
                 DROP INDEX uploads_uploaded_by; DROP INDEX clinic_members_user; DROP INDEX link_codes_clinic; \
                 DROP INDEX upload_requests_clinic; DROP INDEX webauthn_challenges_user;",
            )
            .await
        }
    }
}

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_foundation::Migration),
            Box::new(m0002_nightscout::Migration),
            Box::new(m0003_sharing::Migration),
            Box::new(m0004_nightscout_readonly::Migration),
            Box::new(m0005_account_security::Migration),
            Box::new(m0006_passkeys::Migration),
            Box::new(m0007_email_verification::Migration),
            Box::new(m0008_patient_control::Migration),
            Box::new(m0009_language::Migration),
            Box::new(m0010_reauth::Migration),
            Box::new(m0011_mail_queue::Migration),
            Box::new(m0012_audit_head::Migration),
            Box::new(m0013_entries_natural_key::Migration),
            Box::new(m0014_foreign_key_indexes::Migration),
        ]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_foundation_script() {
        let stmts = super::split_statements(include_str!("sql/0001_foundation.sql"));
        assert!(stmts.len() > 15);
        assert!(stmts.iter().all(|s| !s.contains("--")));
        assert!(stmts[0].starts_with("CREATE TABLE users"));
    }

    #[test]
    fn splits_nightscout_script() {
        let stmts = super::split_statements(include_str!("sql/0002_nightscout.sql"));
        assert_eq!(stmts.len(), 6);
        assert!(stmts[0].starts_with("CREATE TABLE nightscout_sites"));
    }
}
