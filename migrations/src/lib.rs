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
