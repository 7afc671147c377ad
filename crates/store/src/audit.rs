//! The append-only, hash-chained audit log. Each entry's hash covers the
//! previous entry's hash and its own fields, so editing or removing any entry
//! breaks the chain from there on; `verify` names the first bad entry.
//!
//! Removing the newest entries leaves a shorter chain that is still whole,
//! so the log also keeps a sealed head outside the audited rows
//! (`audit_head`, one row): the number of entries, the last one's seq and
//! hash, and an HMAC-SHA256 over them under an [`AuditKey`] derived from the
//! field-encryption key file. Every append updates it in its transaction;
//! `verify` checks that the chain ends where the head says and that the
//! head's MAC holds. A database without the key cannot forge a head.
//!
//! The head is sealed for the first time by the process that applies the
//! migration creating it (`store::migrate_sealed`), over the log as it
//! stands then (an upgraded database's rows included). An append never
//! reseals a head it cannot verify (missing, unsealed or forged): that
//! state stays for `verify` to report.

use crate::entity::{audit_head, audit_log};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryOrder, QuerySelect, Set, TransactionTrait};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The head's id (one row).
const HEAD_ID: i64 = 1;
/// The MAC of a head the migration created and nobody sealed yet.
const UNSEALED: &str = "";

/// The keys that seal the audit head: derived from the field-encryption
/// keys (`FieldCipher::audit_key`), never the encryption keys themselves.
/// The first seals; all verify (a head sealed before `diabase keys rotate`
/// still verifies, and the next append reseals it under the new key).
#[derive(Clone)]
pub struct AuditKey {
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

impl AuditKey {
    /// From derived MAC keys, the sealing one first (see `FieldCipher::audit_key`).
    pub fn from_derived(keys: Vec<[u8; 32]>) -> AuditKey {
        assert!(!keys.is_empty(), "an audit key needs at least one key");
        AuditKey { keys }
    }

    fn mac(key: &[u8; 32], count: i64, last_seq: i64, last_hash: &str) -> HmacSha256 {
        use hmac::Mac;
        let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        m.update(format!("diabase audit head v1|{count}|{last_seq}|{last_hash}").as_bytes());
        m
    }

    fn seal(&self, count: i64, last_seq: i64, last_hash: &str) -> String {
        use hmac::Mac;
        hex::encode(Self::mac(&self.keys[0], count, last_seq, last_hash).finalize().into_bytes())
    }

    /// Whether the head's MAC holds under one of the keys (constant time).
    fn verifies(&self, h: &audit_head::Model) -> bool {
        use hmac::Mac;
        let Ok(tag) = hex::decode(&h.mac) else { return false };
        !h.mac.is_empty()
            && self.keys.iter().any(|k| Self::mac(k, h.count, h.last_seq, &h.last_hash).verify_slice(&tag).is_ok())
    }
}

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

/// Appends an entry, chaining it to the last one and advancing the sealed
/// head. Serialised against other writers (a table lock on PostgreSQL;
/// SQLite has one writer at a time).
pub async fn append(db: &sea_orm::DatabaseConnection, key: &AuditKey, e: Entry<'_>) -> Result<i64, DbErr> {
    append_many(db, key, std::slice::from_ref(&e)).await
}

/// Appends several entries in one transaction (one lock, one round of
/// inserts, one head update); returns the last entry's sequence number (0
/// for none).
pub async fn append_many(
    db: &sea_orm::DatabaseConnection,
    key: &AuditKey,
    entries: &[Entry<'_>],
) -> Result<i64, DbErr> {
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
    let last = audit_log::Entity::find().order_by_desc(audit_log::Column::Seq).limit(1).one(&txn).await?;
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
    // The head advances by what was written here, from what it said before
    // (not from the rows found): a log shortened behind its back stays
    // shorter than its head.
    match audit_head::Entity::find_by_id(HEAD_ID).one(&txn).await? {
        Some(h) if key.verifies(&h) => {
            let count = h.count + entries.len() as i64;
            let mut head: audit_head::ActiveModel = h.into();
            head.count = Set(count);
            head.last_seq = Set(seq);
            head.last_hash = Set(prev.clone());
            head.mac = Set(key.seal(count, seq, &prev));
            sea_orm::ActiveModelTrait::update(head, &txn).await?;
        }
        Some(_) => {
            tracing::error!("the audit log's sealed head does not verify; left as found for `diabase audit verify`")
        }
        None => tracing::error!("the audit log's sealed head is missing; `diabase audit verify` reports it"),
    }
    txn.commit().await?;
    Ok(seq)
}

/// Reseals a head that verifies under one of `key`'s keys with its current
/// one (`diabase keys rotate`); a head that does not verify stays as found.
pub async fn reseal_head(db: &sea_orm::DatabaseConnection, key: &AuditKey) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE").await?;
    }
    if let Some(h) = audit_head::Entity::find_by_id(HEAD_ID).one(&txn).await?.filter(|h| key.verifies(h)) {
        let mac = key.seal(h.count, h.last_seq, &h.last_hash);
        let mut head: audit_head::ActiveModel = h.into();
        head.mac = Set(mac);
        sea_orm::ActiveModelTrait::update(head, &txn).await?;
    }
    txn.commit().await
}

/// Seals an unsealed head over the log as it stands: called by the process
/// that applied the migration creating the head (`store::migrate_sealed`),
/// never otherwise (an unsealed head found later is reported by `verify`).
pub async fn seal_new_head(db: &sea_orm::DatabaseConnection, key: &AuditKey) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE").await?;
    }
    let Some(h) = audit_head::Entity::find_by_id(HEAD_ID).one(&txn).await? else {
        return txn.commit().await;
    };
    if h.mac != UNSEALED {
        return txn.commit().await;
    }
    let count = sea_orm::PaginatorTrait::count(audit_log::Entity::find(), &txn).await? as i64;
    let last = audit_log::Entity::find().order_by_desc(audit_log::Column::Seq).limit(1).one(&txn).await?;
    let (last_seq, last_hash) = last.map(|l| (l.seq, l.hash)).unwrap_or((0, GENESIS.to_string()));
    let mut head: audit_head::ActiveModel = h.into();
    head.count = Set(count);
    head.last_seq = Set(last_seq);
    head.last_hash = Set(last_hash.clone());
    head.mac = Set(key.seal(count, last_seq, &last_hash));
    sea_orm::ActiveModelTrait::update(head, &txn).await?;
    txn.commit().await
}

/// The result of walking the chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        entries: u64,
    },
    /// The first entry whose hash or link does not hold (a removed entry shows
    /// as a gap in `seq` at the entry after it).
    Broken {
        seq: i64,
        reason: String,
    },
}

/// Walks the whole chain in order, then checks it ends where the sealed
/// head says (and that the head's MAC holds under `key`).
pub async fn verify<C: ConnectionTrait>(db: &C, key: &AuditKey) -> Result<Verdict, DbErr> {
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
    let last_seq = expected_seq - 1;
    let Some(head) = audit_head::Entity::find_by_id(HEAD_ID).one(db).await? else {
        return Ok(Verdict::Broken {
            seq: last_seq + 1,
            reason: format!(
                "the log ends at entry {last_seq} and its sealed head is missing: entries may have been removed"
            ),
        });
    };
    if !key.verifies(&head) {
        let why = if head.mac == UNSEALED {
            "was never sealed"
        } else {
            "does not verify under the key (forged, or another key)"
        };
        return Ok(Verdict::Broken {
            seq: last_seq + 1,
            reason: format!(
                "the log ends at entry {last_seq} but its sealed head {why}: entries may have been removed"
            ),
        });
    }
    if head.count != count as i64 || head.last_seq != last_seq || head.last_hash != prev {
        let reason = if head.count > count as i64 {
            format!(
                "the log ends at entry {last_seq} but its sealed head says {} entries: entries were removed",
                head.count
            )
        } else {
            format!(
                "the log ends at entry {last_seq} but its sealed head says {} entries ending at entry {}: the log does not end where it was sealed",
                head.count, head.last_seq
            )
        };
        return Ok(Verdict::Broken { seq: last_seq.min(head.last_seq) + 1, reason });
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
