//! Store test support: a fresh migrated SQLite (in memory) or PostgreSQL
//! database per test, dropped afterwards.
#![allow(dead_code)]

use sea_orm::{ConnectionTrait, DatabaseConnection};
use store::audit::AuditKey;

const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh migrated database (the head sealed under `key`), and the
/// PostgreSQL database's name to drop; `None` when PostgreSQL is not
/// reachable outside CI.
pub async fn fresh(pg: bool, key: &AuditKey) -> Option<(DatabaseConnection, Option<String>)> {
    let (url, name) = if pg {
        let admin = match sea_orm::Database::connect(PG_ADMIN_URL).await {
            Ok(a) => a,
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("PostgreSQL is required under CI: {e}"),
            Err(e) => {
                eprintln!("SKIP: PostgreSQL not reachable ({e})");
                return None;
            }
        };
        let name = format!("diabase_store_{}", uuid::Uuid::new_v4().simple());
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        let _ = admin.close().await;
        (format!("postgres://postgres@127.0.0.1:5432/{name}"), Some(name))
    } else {
        ("sqlite::memory:".to_string(), None)
    };
    let db = store::connect(&url).await.unwrap();
    store::migrate_sealed(&db, key).await.unwrap();
    Some((db, name))
}

pub async fn drop_db(db: DatabaseConnection, name: Option<String>) {
    let _ = db.close().await;
    if let Some(name) = name {
        let admin = sea_orm::Database::connect(PG_ADMIN_URL).await.unwrap();
        let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }
}
