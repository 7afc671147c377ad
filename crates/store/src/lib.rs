//! Diabase persistence: the sea-orm entities, connecting and migrating, the
//! hash-chained audit log, and idempotent insertion of normalised records.
//!
//! Both backends run the same code: SQLite (embedded default) and PostgreSQL.

pub mod audit;
pub mod checkpoint;
pub mod crypto;
pub mod entity;
pub mod records;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use std::time::Duration;

pub use sea_orm;

/// The default database: a file beside the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/diabase.sqlite?mode=rwc";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("cannot create the database folder {path}: {source}")]
    Folder { path: String, source: std::io::Error },
    #[error("unsupported DATABASE_URL scheme in {0:?}: use sqlite://… or postgres://…")]
    Scheme(String),
}

/// Connects to `url` (`sqlite://…` or `postgres://…`), creating the SQLite
/// file's folder when needed.
pub async fn connect(url: &str) -> Result<DatabaseConnection, StoreError> {
    let is_sqlite = url.starts_with("sqlite:");
    if !is_sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        return Err(StoreError::Scheme(redact(url)));
    }
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    if is_sqlite && !memory {
        let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or(path);
        if let Some(parent) = std::path::Path::new(path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|source| StoreError::Folder { path: parent.display().to_string(), source })?;
        }
    }
    let mut opts = ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false).connect_timeout(Duration::from_secs(10)).acquire_timeout(Duration::from_secs(30));
    if is_sqlite {
        // One in-memory database per connection otherwise.
        opts.max_connections(if memory { 1 } else { 8 }).min_connections(1);
        // Per-connection settings belong in the connect options, so that
        // every pooled connection has them (not only the first).
        opts.map_sqlx_sqlite_opts(move |o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            let o = o.foreign_keys(true).busy_timeout(Duration::from_secs(10));
            if memory {
                o
            } else {
                // The log is checkpointed off the request path (see `checkpoint`).
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .pragma("wal_autocheckpoint", checkpoint::AUTOCHECKPOINT_PAGES.to_string())
            }
        });
    } else {
        opts.max_connections(20).min_connections(1);
    }
    let db = Database::connect(opts).await?;
    if db.get_database_backend() == DbBackend::Sqlite {
        db.execute_unprepared("PRAGMA foreign_keys = ON").await?;
        db.execute_unprepared("PRAGMA busy_timeout = 10000").await?;
        if !memory {
            db.execute_unprepared("PRAGMA journal_mode = WAL").await?;
            db.execute_unprepared("PRAGMA synchronous = NORMAL").await?;
        }
    }
    Ok(db)
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), StoreError> {
    use migration::MigratorTrait;
    migration::Migrator::up(db, None).await?;
    Ok(())
}

/// Applies every pending migration and, when this run created the audit
/// log's head (migration 0012), seals it over the log as it stands under
/// `key` (see `audit`). Every process that holds the key migrates this way.
pub async fn migrate_sealed(db: &DatabaseConnection, key: &audit::AuditKey) -> Result<(), StoreError> {
    use migration::MigratorTrait;
    let creates_head =
        migration::Migrator::get_pending_migrations(db).await?.iter().any(|m| m.name() == "m0012_audit_head");
    migration::Migrator::up(db, None).await?;
    if creates_head {
        audit::seal_new_head(db, key).await?;
    }
    Ok(())
}

/// A URL fit for logs: the password (if any) replaced.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A new random id for a row (UUID v4, text).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// SHA-256 as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("sqlite://data/x.sqlite"), "sqlite://data/x.sqlite");
    }
}
