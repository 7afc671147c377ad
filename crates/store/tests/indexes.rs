//! Every foreign key has an index that starts with its columns (issue 23):
//! deleting an upload, a device or an account, and the custodial merge,
//! find the referencing rows by index instead of scanning `glucose` and
//! `therapy_events`. Checked on the migrated schema of SQLite and
//! PostgreSQL, so a new table cannot forget one. The query plans of the hot
//! deletes are checked too.
#![allow(clippy::unwrap_used)] // a test fails by panicking

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use store::crypto::FieldCipher;

mod common;
use common::{drop_db, fresh};

async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql.to_string())).await.unwrap()
}

/// `table(columns)` of every foreign key no index starts with.
async fn unindexed_foreign_keys(db: &DatabaseConnection, pg: bool) -> Vec<String> {
    let mut missing = Vec::new();
    if pg {
        let sql = "SELECT c.conrelid::regclass::text AS tbl, \
                   (SELECT string_agg(a.attname, ',' ORDER BY k.ord) \
                      FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) \
                      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) AS cols \
                   FROM pg_constraint c \
                   WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace \
                   AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid \
                       AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] @> c.conkey \
                       AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] <@ c.conkey) \
                   ORDER BY 1, 2";
        for r in rows(db, sql).await {
            let t: String = r.try_get("", "tbl").unwrap();
            let c: String = r.try_get("", "cols").unwrap();
            missing.push(format!("{t}({c})"));
        }
        return missing;
    }
    let tables = rows(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").await;
    for t in tables {
        let table: String = t.try_get("", "name").unwrap();
        // The leading columns of every index, and of the rowid primary key.
        let mut leading: Vec<Vec<String>> = Vec::new();
        for i in rows(db, &format!("SELECT name FROM pragma_index_list('{table}')")).await {
            let index: String = i.try_get("", "name").unwrap();
            let cols = rows(db, &format!("SELECT name FROM pragma_index_info('{index}') ORDER BY seqno")).await;
            leading.push(cols.iter().map(|c| c.try_get::<String>("", "name").unwrap_or_default()).collect());
        }
        let pk = rows(db, &format!("SELECT name FROM pragma_table_info('{table}') WHERE pk > 0 ORDER BY pk")).await;
        leading.push(pk.iter().map(|c| c.try_get::<String>("", "name").unwrap()).collect());
        let fks =
            rows(db, &format!("SELECT id, seq, \"from\" FROM pragma_foreign_key_list('{table}') ORDER BY id, seq"))
                .await;
        let mut by_id: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
        for f in fks {
            by_id.entry(f.try_get::<i64>("", "id").unwrap()).or_default().push(f.try_get("", "from").unwrap());
        }
        for cols in by_id.into_values() {
            let covered = leading.iter().any(|ix| {
                ix.len() >= cols.len() && {
                    let mut head = ix[..cols.len()].to_vec();
                    let mut want = cols.clone();
                    head.sort();
                    want.sort();
                    head == want
                }
            });
            if !covered {
                missing.push(format!("{table}({})", cols.join(",")));
            }
        }
    }
    missing.sort();
    missing
}

async fn plan(db: &DatabaseConnection, pg: bool, sql: &str) -> String {
    let explain = if pg { format!("EXPLAIN {sql}") } else { format!("EXPLAIN QUERY PLAN {sql}") };
    rows(db, &explain)
        .await
        .iter()
        .map(|r| {
            if pg { r.try_get::<String>("", "QUERY PLAN").unwrap() } else { r.try_get::<String>("", "detail").unwrap() }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn scenario(pg: bool) {
    let key = FieldCipher::new(FieldCipher::random_key()).audit_key();
    let Some((db, name)) = fresh(pg, &key).await else { return };
    let missing = unindexed_foreign_keys(&db, pg).await;
    assert!(
        missing.is_empty(),
        "foreign keys without an index ({}): {missing:?}",
        if pg { "PostgreSQL" } else { "SQLite" }
    );

    // The hot deletes and the merge use those indexes.
    if pg {
        // An empty table is read sequentially whatever its indexes; make
        // the planner price the scan as the large table it will be.
        db.execute_unprepared("SET enable_seqscan = off").await.unwrap();
    }
    for (sql, index) in [
        ("DELETE FROM glucose WHERE upload_id = 'u'", "glucose_upload"),
        ("DELETE FROM therapy_events WHERE upload_id = 'u'", "therapy_events_upload"),
        ("UPDATE glucose SET device_id = 'b' WHERE device_id = 'a'", "glucose_device"),
        ("UPDATE therapy_events SET device_id = 'b' WHERE device_id = 'a'", "therapy_events_device"),
        ("SELECT id FROM uploads WHERE device_id = 'a'", "uploads_device"),
    ] {
        let p = plan(&db, pg, sql).await;
        assert!(p.contains(index), "{sql} does not use {index}:\n{p}");
    }
    drop_db(db, name).await;
}

#[tokio::test]
async fn every_foreign_key_is_indexed_sqlite() {
    scenario(false).await;
}

#[tokio::test]
async fn every_foreign_key_is_indexed_postgres() {
    scenario(true).await;
}
