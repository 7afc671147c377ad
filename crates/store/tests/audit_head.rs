//! The audit log's sealed head (issue 19, item 9): removing the newest
//! entries, the head itself, or forging the head under another key is
//! reported by `verify`; SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)] // a test fails by panicking

use sea_orm::{ConnectionTrait, DatabaseConnection};
use store::audit::{self, AuditKey, Entry, Verdict};
use store::crypto::FieldCipher;

mod common;
use common::{drop_db, fresh};

fn entry(i: usize) -> Entry<'static> {
    Entry {
        at_ms: 1_700_000_000_000 + i as i64,
        actor_user_id: Some("u1"),
        patient_id: None,
        action: "test",
        detail: "d",
        ip: None,
    }
}

async fn fill(db: &DatabaseConnection, key: &AuditKey, n: usize) {
    for i in 0..n {
        audit::append(db, key, entry(i)).await.unwrap();
    }
    let batch: Vec<_> = (n..n + 5).map(entry).collect();
    audit::append_many(db, key, &batch).await.unwrap();
}

fn broken(v: &Verdict) -> (i64, &str) {
    match v {
        Verdict::Broken { seq, reason } => (*seq, reason.as_str()),
        Verdict::Intact { entries } => panic!("reported intact ({entries} entries)"),
    }
}

async fn scenario(pg: bool) {
    let key = FieldCipher::new(FieldCipher::random_key()).audit_key();
    let Some((db, name)) = fresh(pg, &key).await else { return };
    // Empty, then many appends: intact.
    assert_eq!(audit::verify(&db, &key).await.unwrap(), Verdict::Intact { entries: 0 });
    fill(&db, &key, 25).await;
    assert_eq!(audit::verify(&db, &key).await.unwrap(), Verdict::Intact { entries: 30 });

    // Another key does not verify the head.
    let other = FieldCipher::new(FieldCipher::random_key()).audit_key();
    let v = audit::verify(&db, &other).await.unwrap();
    assert!(broken(&v).1.contains("does not verify"), "{v:?}");

    // The newest entries removed: the chain is whole, the head says more.
    db.execute_unprepared("DELETE FROM audit_log WHERE seq > 27").await.unwrap();
    let v = audit::verify(&db, &key).await.unwrap();
    let (seq, reason) = broken(&v);
    assert_eq!(seq, 28, "{reason}");
    assert!(
        reason.contains("ends at entry 27") && reason.contains("says 30 entries") && reason.contains("removed"),
        "{reason}"
    );
    // A later append does not heal it.
    audit::append(&db, &key, entry(99)).await.unwrap();
    let v = audit::verify(&db, &key).await.unwrap();
    assert!(broken(&v).1.contains("removed"), "{v:?}");

    // A head forged without the key (the counts made to match): refused,
    // and an append does not reseal it.
    db.execute_unprepared(
        "UPDATE audit_head SET count = 28, last_seq = 28, last_hash = (SELECT hash FROM audit_log WHERE seq = 28), \
         mac = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff'",
    )
    .await
    .unwrap();
    let v = audit::verify(&db, &key).await.unwrap();
    assert!(broken(&v).1.contains("does not verify"), "{v:?}");
    audit::append(&db, &key, entry(100)).await.unwrap();
    assert!(broken(&audit::verify(&db, &key).await.unwrap()).1.contains("does not verify"));
    // Nor does an "unsealed" one pass.
    db.execute_unprepared("UPDATE audit_head SET count = 29, last_seq = 29, last_hash = (SELECT hash FROM audit_log WHERE seq = 29), mac = ''")
        .await
        .unwrap();
    assert!(broken(&audit::verify(&db, &key).await.unwrap()).1.contains("never sealed"));

    // The head deleted.
    db.execute_unprepared("DELETE FROM audit_head").await.unwrap();
    let v = audit::verify(&db, &key).await.unwrap();
    assert!(broken(&v).1.contains("head is missing"), "{v:?}");
    drop_db(db, name).await;
}

/// An upgraded database: rows written before the head existed get a head
/// sealed over them by the process that applies the migration.
async fn upgrade(pg: bool) {
    let key = FieldCipher::new(FieldCipher::random_key()).audit_key();
    let Some((db, name)) = fresh(pg, &key).await else { return };
    fill(&db, &key, 3).await;
    // Back to the schema before migration 0012, rows kept.
    db.execute_unprepared("DROP TABLE audit_head").await.unwrap();
    db.execute_unprepared("DELETE FROM seaql_migrations WHERE version = 'm0012_audit_head'").await.unwrap();
    store::migrate_sealed(&db, &key).await.unwrap();
    assert_eq!(audit::verify(&db, &key).await.unwrap(), Verdict::Intact { entries: 8 });
    audit::append(&db, &key, entry(9)).await.unwrap();
    assert_eq!(audit::verify(&db, &key).await.unwrap(), Verdict::Intact { entries: 9 });
    // A later start-up does not reseal anything.
    db.execute_unprepared("DELETE FROM audit_log WHERE seq = 9").await.unwrap();
    store::migrate_sealed(&db, &key).await.unwrap();
    assert!(broken(&audit::verify(&db, &key).await.unwrap()).1.contains("removed"));
    drop_db(db, name).await;
}

/// After `diabase keys rotate` the head is resealed under the new key.
async fn rotation(pg: bool) {
    let old = FieldCipher::new(FieldCipher::random_key());
    let Some((db, name)) = fresh(pg, &old.audit_key()).await else { return };
    fill(&db, &old.audit_key(), 2).await;
    let new_key = FieldCipher::random_key();
    let ring = FieldCipher::new(new_key).merged_with(&old);
    // Sealed under the old key: the ring (new and old keys) verifies it.
    assert_eq!(audit::verify(&db, &ring.audit_key()).await.unwrap(), Verdict::Intact { entries: 7 });
    audit::reseal_head(&db, &ring.audit_key()).await.unwrap();
    // The new key alone now verifies it.
    assert_eq!(
        audit::verify(&db, &FieldCipher::new(new_key).audit_key()).await.unwrap(),
        Verdict::Intact { entries: 7 }
    );
    drop_db(db, name).await;
}

#[tokio::test]
async fn truncation_deletion_and_forgery_are_reported_sqlite() {
    scenario(false).await;
}

#[tokio::test]
async fn truncation_deletion_and_forgery_are_reported_postgres() {
    scenario(true).await;
}

#[tokio::test]
async fn an_upgraded_log_is_sealed_once_sqlite() {
    upgrade(false).await;
}

#[tokio::test]
async fn an_upgraded_log_is_sealed_once_postgres() {
    upgrade(true).await;
}

#[tokio::test]
async fn key_rotation_reseals_the_head_sqlite() {
    rotation(false).await;
}

#[tokio::test]
async fn key_rotation_reseals_the_head_postgres() {
    rotation(true).await;
}
