//! The append-only, hash-chained audit log. Each entry's hash covers the
//! previous entry's hash and its own fields, so editing or removing any entry
//! breaks the chain from there on; `verify` names the first bad entry.

use crate::entity::audit_log;
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryOrder, QuerySelect,
    Set, TransactionTrait,
};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What to record.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub at_ms: i64,
    pub actor_user_id: Option<&'a str>,
    pub patient_id: Option<&'a str>,
    pub action: &'a str,
    /// Free text without health data (ids, names of things, counts).
    pub detail: &'a str,
    pub ip: Option<&'a str>,
}

fn entry_hash(prev: &str, seq: i64, e: &Entry<'_>) -> String {
    let mut s = String::with_capacity(256);
    for part in [
        prev,
        &seq.to_string(),
        &e.at_ms.to_string(),
        e.actor_user_id.unwrap_or(""),
        e.patient_id.unwrap_or(""),
        e.action,
        e.detail,
        e.ip.unwrap_or(""),
    ] {
        s.push_str(&part.len().to_string());
        s.push(':');
        s.push_str(part);
        s.push('|');
    }
    crate::sha256_hex(s.as_bytes())
}

/// Appends an entry, chaining it to the last one. Serialised against other
/// writers (a table lock on PostgreSQL; SQLite has one writer at a time).
pub async fn append(db: &sea_orm::DatabaseConnection, e: Entry<'_>) -> Result<i64, DbErr> {
    append_many(db, std::slice::from_ref(&e)).await
}

/// Appends several entries in one transaction (one lock, one round of
/// inserts); returns the last entry's sequence number (0 for none).
pub async fn append_many(db: &sea_orm::DatabaseConnection, entries: &[Entry<'_>]) -> Result<i64, DbErr> {
    if entries.is_empty() {
        return Ok(0);
    }
    let txn = db.begin().await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE").await?;
    } else {
        // Take SQLite's write lock before reading the head: a deferred
        // transaction that reads first and writes later fails with
        // SQLITE_BUSY_SNAPSHOT (517, "database is locked", not retried by
        // the busy timeout) when another connection (a request, the mail
        // queue's worker) commits in between.
        txn.execute_unprepared("UPDATE audit_log SET seq = seq WHERE 0 = 1").await?;
    }
    let last = audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Seq)
        .limit(1)
        .one(&txn)
        .await?;
    let (mut seq, mut prev) = match last {
        Some(l) => (l.seq, l.hash),
        None => (0, GENESIS.to_string()),
    };
    let mut rows = Vec::with_capacity(entries.len());
    for e in entries {
        seq += 1;
        let hash = entry_hash(&prev, seq, e);
        rows.push(audit_log::ActiveModel {
            seq: Set(seq),
            at_ms: Set(e.at_ms),
            actor_user_id: Set(e.actor_user_id.map(str::to_string)),
            patient_id: Set(e.patient_id.map(str::to_string)),
            action: Set(e.action.to_string()),
            detail: Set(e.detail.to_string()),
            ip: Set(e.ip.map(str::to_string)),
            prev_hash: Set(std::mem::replace(&mut prev, hash.clone())),
            hash: Set(hash),
        });
    }
    for chunk in rows.chunks(500) {
        audit_log::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
    }
    txn.commit().await?;
    Ok(seq)
}

/// The result of walking the chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact { entries: u64 },
    /// The first entry whose hash or link does not hold (a removed entry shows
    /// as a gap in `seq` at the entry after it).
    Broken { seq: i64, reason: String },
}

/// Walks the whole chain in order.
pub async fn verify<C: ConnectionTrait>(db: &C) -> Result<Verdict, DbErr> {
    let mut prev = GENESIS.to_string();
    let mut expected_seq = 1i64;
    let mut count = 0u64;
    let mut after = 0i64;
    loop {
        let page = audit_log::Entity::find()
            .filter_seq_after(after)
            .order_by_asc(audit_log::Column::Seq)
            .limit(1000)
            .all(db)
            .await?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            if row.seq != expected_seq {
                return Ok(Verdict::Broken {
                    seq: row.seq,
                    reason: format!("entry {} is missing before entry {}", expected_seq, row.seq),
                });
            }
            if row.prev_hash != prev {
                return Ok(Verdict::Broken {
                    seq: row.seq,
                    reason: "its link to the previous entry does not match".into(),
                });
            }
            let e = Entry {
                at_ms: row.at_ms,
                actor_user_id: row.actor_user_id.as_deref(),
                patient_id: row.patient_id.as_deref(),
                action: &row.action,
                detail: &row.detail,
                ip: row.ip.as_deref(),
            };
            if entry_hash(&prev, row.seq, &e) != row.hash {
                return Ok(Verdict::Broken {
                    seq: row.seq,
                    reason: "its content does not match its hash (edited)".into(),
                });
            }
            prev = row.hash.clone();
            expected_seq += 1;
            count += 1;
            after = row.seq;
        }
    }
    Ok(Verdict::Intact { entries: count })
}

trait SeqAfter {
    fn filter_seq_after(self, seq: i64) -> Self;
}

impl SeqAfter for sea_orm::Select<audit_log::Entity> {
    fn filter_seq_after(self, seq: i64) -> Self {
        use sea_orm::{ColumnTrait, QueryFilter};
        self.filter(audit_log::Column::Seq.gt(seq))
    }
}
