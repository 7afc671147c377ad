//! SQLite's write-ahead log, copied back into the database file off the
//! request path.
//!
//! By default SQLite checkpoints inside the commit that takes the log past
//! 1,000 pages, so whichever request commits then (a file import, usually)
//! also pays for copying every page of the log into the database file and
//! syncing it: about half of a 90-day import's writes. Diabase raises that
//! threshold to [`AUTOCHECKPOINT_PAGES`] (a bound on the log should the task
//! below not run, as in one-shot CLI commands) and runs a passive checkpoint
//! every [`INTERVAL`] on a background task instead. A passive checkpoint
//! never blocks readers or writers; what it cannot copy yet (a reader still
//! needs the old pages) it copies on a later tick.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use std::time::Duration;

/// Pages in the log at which a commit checkpoints by itself (16,384 pages
/// of 4 KiB: 64 MiB).
pub const AUTOCHECKPOINT_PAGES: u32 = 16_384;
/// How often the background task checkpoints.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The background checkpoint task of one database; it stops when this is
/// dropped.
#[derive(Debug)]
pub struct Checkpointer {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the checkpoint task for `db`, if it is an SQLite file in WAL mode
/// (PostgreSQL and in-memory databases need none). Call it inside a Tokio
/// runtime.
pub async fn spawn(db: &DatabaseConnection) -> Option<Checkpointer> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let mode = db
        .query_one_raw(sea_orm::Statement::from_string(DbBackend::Sqlite, "PRAGMA journal_mode"))
        .await
        .ok()??
        .try_get_by_index::<String>(0)
        .ok()?;
    if !mode.eq_ignore_ascii_case("wal") {
        return None;
    }
    let db = db.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Errors (a busy database, say) are retried on the next tick.
            let _ = db.execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)").await;
        }
    });
    Some(Checkpointer { task })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file_len(p: &std::path::Path) -> u64 {
        std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
    }

    async fn write_mib(db: &DatabaseConnection, table: &str) {
        db.execute_unprepared(&format!("CREATE TABLE {table} (b BLOB)")).await.unwrap();
        for _ in 0..4 {
            db.execute_unprepared(&format!("INSERT INTO {table} VALUES (randomblob(262144))")).await.unwrap();
        }
    }

    /// Commits leave their pages in the log (the commit does not
    /// checkpoint); the task copies them into the database file within a
    /// few ticks, and stops when dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_checkpointed_in_the_background_until_dropped() {
        let dir = std::env::temp_dir().join(format!("diabase-ckpt-{}", crate::new_id()));
        let file = dir.join("c.sqlite");
        let db = crate::connect(&format!("sqlite://{}?mode=rwc", file.display())).await.unwrap();
        let pragma = |name: &'static str| {
            let db = db.clone();
            async move {
                db.query_one_raw(sea_orm::Statement::from_string(DbBackend::Sqlite, format!("PRAGMA {name}")))
                    .await
                    .unwrap()
                    .unwrap()
                    .try_get_by_index::<i64>(0)
                    .unwrap()
            }
        };
        assert_eq!(pragma("wal_autocheckpoint").await, i64::from(AUTOCHECKPOINT_PAGES));

        write_mib(&db, "a").await;
        assert!(file_len(&file) < 256 * 1024, "the commit itself checkpointed: {} bytes", file_len(&file));
        let ckpt = spawn(&db).await.expect("a WAL database gets a checkpointer");
        let copied = async {
            while file_len(&file) < 1024 * 1024 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(INTERVAL * 5, copied).await.expect("the log was not checkpointed");

        drop(ckpt);
        let before = file_len(&file);
        write_mib(&db, "b").await;
        tokio::time::sleep(INTERVAL * 3).await;
        assert_eq!(file_len(&file), before, "the task went on after it was dropped");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn in_memory_databases_need_no_checkpointer() {
        let db = crate::connect("sqlite::memory:").await.unwrap();
        assert!(spawn(&db).await.is_none());
    }
}
