//! Idempotent insertion of normalised records into `glucose` and
//! `therapy_events`. Each row carries a dedup hash of (device, kind, device
//! time, value); the unique key (patient, dedup) makes a re-import or an
//! overlapping import add nothing twice.

use chrono_free::to_utc_ms;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use std::collections::BTreeMap;
use therapy::{Record, RecordKind};

/// Where records come from; orders sources covering the same instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceRank {
    Device = 0,
    File = 1,
    Api = 2,
}

/// The context every record of one batch shares.
#[derive(Clone, Debug)]
pub struct Batch<'a> {
    pub patient_id: &'a str,
    pub device_id: Option<&'a str>,
    pub upload_id: Option<&'a str>,
    pub rank: SourceRank,
    pub zone: chrono_tz::Tz,
    /// Device clock minus true local time, in seconds.
    pub clock_offset_s: i64,
}

/// What a batch insert did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inserted {
    /// New rows by record type.
    pub by_kind: BTreeMap<String, u64>,
    /// Records already stored (same device, kind, time and value).
    pub duplicates: u64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

impl Inserted {
    pub fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }
}

/// Rows per statement: 7 (glucose) or 6 (events) parameters a row, well
/// under SQLite's 32,766 and PostgreSQL's 65,535 parameters a statement.
const CHUNK: usize = 1_000;

/// A glucose row's own values (the batch supplies the rest).
struct GlucoseRow {
    time_ms: i64,
    device_time: String,
    value_mg_dl: i32,
    bg_source: Option<String>,
    trend: Option<String>,
    out_of_range: Option<String>,
    dedup: String,
}

/// A therapy event row's own values.
struct EventRow {
    time_ms: i64,
    device_time: String,
    amount: Option<f64>,
    duration_min: Option<i32>,
    record_json: String,
    dedup: String,
}

/// Inserts `records` (in chunks, inside the caller's transaction if it is one).
///
/// Each chunk is one `INSERT … SELECT <batch constants>, v.* FROM (VALUES …)
/// ON CONFLICT (patient_id, dedup) DO NOTHING`: the values shared by the
/// batch (patient, device, upload, kind, rank, zone, offset) are bound once
/// per statement, not once per row, and no per-row models are built. The
/// same text runs on SQLite and PostgreSQL (both name a VALUES list's
/// columns `column1…`).
pub async fn insert_records<C: ConnectionTrait>(
    db: &C,
    batch: &Batch<'_>,
    records: &[Record],
) -> Result<Inserted, DbErr> {
    let prepared = prepare(db.get_database_backend(), batch, records)?;
    execute(db, prepared).await
}

/// The statements that insert a batch of records, built without the
/// database (pure computation: times, dedup keys, JSON, SQL text and
/// parameters), so a caller can build them on another thread while the
/// database runs the ones before; [`execute`] runs them.
pub struct Prepared {
    statements: Vec<PreparedStatement>,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
}

struct PreparedStatement {
    kind: &'static str,
    rows: u64,
    sql: String,
    params: Params,
}

impl Prepared {
    /// Rows in all statements.
    pub fn rows(&self) -> u64 {
        self.statements.iter().map(|s| s.rows).sum()
    }
}

/// Builds the insert statements of `records` (see [`insert_records`]).
pub fn prepare(backend: DbBackend, batch: &Batch<'_>, records: &[Record]) -> Result<Prepared, DbErr> {
    let mut first_ms: Option<i64> = None;
    let mut last_ms: Option<i64> = None;
    let mut g_rows: Vec<(&'static str, GlucoseRow)> = Vec::new();
    let mut e_rows: Vec<(&'static str, EventRow)> = Vec::new();
    let dev = batch.device_id.unwrap_or("");
    let (mut scratch, mut num) = (Vec::with_capacity(256), Vec::with_capacity(8));
    for r in records {
        let time_ms = match r.time {
            Some(t) => t.timestamp_millis(),
            None => to_utc_ms(r, batch.zone, batch.clock_offset_s),
        };
        first_ms = Some(first_ms.map_or(time_ms, |f| f.min(time_ms)));
        last_ms = Some(last_ms.map_or(time_ms, |l| l.max(time_ms)));
        let device_time = r.device_time.to_string();
        match &r.kind {
            RecordKind::Cgm { value_mg_dl, trend, out_of_range } => {
                num.clear();
                push_decimal(&mut num, u64::from(*value_mg_dl));
                let dedup = dedup_key(&mut scratch, &[dev.as_bytes(), b"cgm", device_time.as_bytes(), &num]);
                g_rows.push((
                    "cgm",
                    GlucoseRow {
                        time_ms,
                        device_time,
                        value_mg_dl: i32::from(*value_mg_dl),
                        bg_source: None,
                        trend: trend.map(|t| enum_str(&t)),
                        out_of_range: out_of_range.map(|o| enum_str(&o)),
                        dedup,
                    },
                ));
            }
            RecordKind::Bg { value_mg_dl, source } => {
                let src = enum_str(source);
                num.clear();
                push_decimal(&mut num, u64::from(*value_mg_dl));
                let dedup =
                    dedup_key(&mut scratch, &[dev.as_bytes(), b"bg", device_time.as_bytes(), &num, src.as_bytes()]);
                g_rows.push((
                    "bg",
                    GlucoseRow {
                        time_ms,
                        device_time,
                        value_mg_dl: i32::from(*value_mg_dl),
                        bg_source: Some(src),
                        trend: None,
                        out_of_range: None,
                        dedup,
                    },
                ));
            }
            kind => {
                let mut stored = r.clone();
                stored.time = None;
                let json = serde_json::to_string(&stored).map_err(|e| DbErr::Custom(e.to_string()))?;
                let type_name = kind.type_name();
                let keyed = key_json(&stored, batch.rank).map_err(|e| DbErr::Custom(e.to_string()))?;
                let dedup = dedup_key(
                    &mut scratch,
                    &[dev.as_bytes(), type_name.as_bytes(), keyed.as_deref().unwrap_or(&json).as_bytes()],
                );
                let (amount, duration_min) = hot_values(kind);
                e_rows.push((
                    type_name,
                    EventRow { time_ms, device_time, amount, duration_min, record_json: json, dedup },
                ));
            }
        }
    }
    // Chunks of one kind each, so the inserted count of a chunk is exact per kind.
    g_rows.sort_by(|a, b| a.0.cmp(b.0));
    e_rows.sort_by(|a, b| a.0.cmp(b.0));
    let ranges = |len: usize, key: &dyn Fn(usize) -> &'static str| -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut a = 0;
        while a < len {
            let mut b = a + 1;
            while b < len && b - a < CHUNK && key(b) == key(a) {
                b += 1;
            }
            out.push((a, b));
            a = b;
        }
        out
    };
    let mut statements = Vec::new();
    for (a, b) in ranges(g_rows.len(), &|i| g_rows[i].0) {
        let c = &mut g_rows[a..b];
        let (sql, params) = glucose_statement(backend, batch, c);
        statements.push(PreparedStatement { kind: c[0].0, rows: c.len() as u64, sql, params });
    }
    for (a, b) in ranges(e_rows.len(), &|i| e_rows[i].0) {
        let c = &mut e_rows[a..b];
        let (sql, params) = events_statement(backend, batch, c);
        statements.push(PreparedStatement { kind: c[0].0, rows: c.len() as u64, sql, params });
    }
    Ok(Prepared { statements, first_ms, last_ms })
}

/// Runs prepared insert statements (inside the caller's transaction if it is one).
pub async fn execute<C: ConnectionTrait>(db: &C, prepared: Prepared) -> Result<Inserted, DbErr> {
    let mut out = Inserted { first_ms: prepared.first_ms, last_ms: prepared.last_ms, ..Inserted::default() };
    for st in prepared.statements {
        let inserted = run_insert(db, st.sql, st.params).await?;
        account(&mut out, st.kind, st.rows, inserted);
    }
    Ok(out)
}

/// Builds the parameter list and its placeholders (`?` or `$n`).
struct Params {
    backend: DbBackend,
    values: Vec<Value>,
}

impl Params {
    fn new(backend: DbBackend, capacity: usize) -> Self {
        Params { backend, values: Vec::with_capacity(capacity) }
    }

    /// Adds a value; writes its placeholder to `sql`.
    fn push(&mut self, sql: &mut String, v: impl Into<Value>) {
        self.values.push(v.into());
        match self.backend {
            DbBackend::Postgres => {
                sql.push('$');
                sql.push_str(&self.values.len().to_string());
            }
            _ => sql.push('?'),
        }
    }
}

/// The batch constants of a row: patient, device, upload, kind, rank, zone, offset.
fn push_batch(p: &mut Params, sql: &mut String, batch: &Batch<'_>, kind: &str) {
    p.push(sql, batch.patient_id.to_string());
    sql.push_str(", ");
    p.push(sql, batch.device_id.map(str::to_string));
    sql.push_str(", ");
    p.push(sql, batch.upload_id.map(str::to_string));
    sql.push_str(", ");
    p.push(sql, kind.to_string());
    sql.push_str(", ");
    p.push(sql, batch.rank as i16);
    sql.push_str(", ");
    p.push(sql, batch.zone.name().to_string());
    sql.push_str(", ");
    p.push(sql, batch.clock_offset_s);
}

async fn run_insert<C: ConnectionTrait>(db: &C, sql: String, p: Params) -> Result<u64, DbErr> {
    let res = db.execute_raw(Statement::from_sql_and_values(p.backend, sql, p.values)).await?;
    Ok(res.rows_affected())
}

/// `INSERT INTO <table> (<batch columns>, <row columns>) SELECT <batch
/// values>, v.column1… FROM (VALUES <rows>) AS v … ON CONFLICT DO NOTHING`
/// for rows of `N` values each.
fn values_statement<const N: usize>(
    backend: DbBackend,
    batch: &Batch<'_>,
    table: &str,
    row_columns: [&str; N],
    kind: &str,
    rows: Vec<[Value; N]>,
) -> (String, Params) {
    let mut p = Params::new(backend, 7 + N * rows.len());
    let mut sql = String::with_capacity(400 + 6 * N * rows.len());
    sql.push_str("INSERT INTO ");
    sql.push_str(table);
    sql.push_str(" (patient_id, device_id, upload_id, kind, source_rank, time_zone, clock_offset_s");
    for c in row_columns {
        sql.push_str(", ");
        sql.push_str(c);
    }
    sql.push_str(") SELECT ");
    push_batch(&mut p, &mut sql, batch, kind);
    for i in 1..=N {
        sql.push_str(", v.column");
        sql.push_str(&i.to_string());
    }
    sql.push_str(" FROM (VALUES ");
    for (i, row) in rows.into_iter().enumerate() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for (j, v) in row.into_iter().enumerate() {
            if j > 0 {
                sql.push_str(", ");
            }
            p.push(&mut sql, v);
        }
        sql.push(')');
    }
    // `WHERE true` keeps SQLite from reading ON CONFLICT as a join's ON.
    sql.push_str(") AS v WHERE true ON CONFLICT (patient_id, dedup) DO NOTHING");
    (sql, p)
}

/// The statement inserting one chunk of glucose rows of one kind (their
/// strings are moved out).
fn glucose_statement(
    backend: DbBackend,
    batch: &Batch<'_>,
    chunk: &mut [(&'static str, GlucoseRow)],
) -> (String, Params) {
    let kind = chunk[0].0;
    let rows = chunk
        .iter_mut()
        .map(|(_, r)| {
            [
                r.time_ms.into(),
                std::mem::take(&mut r.device_time).into(),
                r.value_mg_dl.into(),
                r.bg_source.take().into(),
                r.trend.take().into(),
                r.out_of_range.take().into(),
                std::mem::take(&mut r.dedup).into(),
            ]
        })
        .collect();
    let columns = ["time_ms", "device_time", "value_mg_dl", "bg_source", "trend", "out_of_range", "dedup"];
    values_statement(backend, batch, "glucose", columns, kind, rows)
}

/// The statement inserting one chunk of therapy events of one kind.
fn events_statement(backend: DbBackend, batch: &Batch<'_>, chunk: &mut [(&'static str, EventRow)]) -> (String, Params) {
    let kind = chunk[0].0;
    let rows = chunk
        .iter_mut()
        .map(|(_, r)| {
            [
                r.time_ms.into(),
                std::mem::take(&mut r.device_time).into(),
                r.amount.into(),
                r.duration_min.into(),
                std::mem::take(&mut r.record_json).into(),
                std::mem::take(&mut r.dedup).into(),
            ]
        })
        .collect();
    let columns = ["time_ms", "device_time", "amount", "duration_min", "record_json", "dedup"];
    values_statement(backend, batch, "therapy_events", columns, kind, rows)
}

fn account(out: &mut Inserted, kind: &str, rows: u64, inserted: u64) {
    out.duplicates += rows.saturating_sub(inserted);
    if inserted > 0 {
        *out.by_kind.entry(kind.to_string()).or_default() += inserted;
    }
}

/// The JSON the dedup key of a therapy event is taken over, when it is not the stored JSON:
/// the record as it was written before a field was added, so that a file imported again after
/// the decoders learnt more adds nothing twice (the row already stored keeps its older JSON).
/// - A bolus without its parts (`normal_*`, `extended_*`, added for issue 24).
/// - A Bolus Wizard estimate from a pump upload with 0 g of carbs, without `carbs_g`: the
///   MiniMed decoder left a 0 out before issue 24 (the CareLink importer always kept it, so
///   file rows are keyed as they are).
fn key_json(r: &Record, rank: SourceRank) -> Result<Option<String>, serde_json::Error> {
    match &r.kind {
        RecordKind::Bolus { .. } => {
            let legacy = Record { kind: r.kind.without_bolus_parts(), ..r.clone() };
            if legacy.kind == r.kind {
                return Ok(None);
            }
            serde_json::to_string(&legacy).map(Some)
        }
        RecordKind::BolusWizard(w) if rank == SourceRank::Device && w.carbs_g == Some(0.0) => {
            let mut w = w.clone();
            w.carbs_g = None;
            serde_json::to_string(&Record { kind: RecordKind::BolusWizard(w), ..r.clone() }).map(Some)
        }
        _ => Ok(None),
    }
}

fn hot_values(kind: &RecordKind) -> (Option<f64>, Option<i32>) {
    match kind {
        RecordKind::Bolus { delivered_u, programmed_u, duration_min, .. } => {
            (delivered_u.or(*programmed_u), duration_min.map(|d| d as i32))
        }
        RecordKind::BolusWizard(w) => (w.carbs_g, None),
        RecordKind::BasalProfileStart { rate_u_h, .. } => (Some(*rate_u_h), None),
        RecordKind::TempBasal { rate_u_h, percent, duration_min } => {
            (rate_u_h.or(percent.map(f64::from)), duration_min.map(|d| d as i32))
        }
        RecordKind::Carbs { grams } => (Some(*grams), None),
        RecordKind::Prime { units, .. } => (Some(*units), None),
        RecordKind::DailyTotal { units, .. } => (Some(*units), None),
        RecordKind::Alarm { code, .. } => (code.map(f64::from), None),
        _ => (None, None),
    }
}

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The dedup key of a record: the first 128 bits, in hex, of SHA-256 over
/// each part as `<byte length>:<bytes>`. Stored rows hold these keys, so
/// the text must never change; `scratch` is reused between records.
fn dedup_key(scratch: &mut Vec<u8>, parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    scratch.clear();
    for p in parts {
        push_decimal(scratch, p.len() as u64);
        scratch.push(b':');
        scratch.extend_from_slice(p);
    }
    let digest = Sha256::digest(&scratch[..]);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in &digest[..16] {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// Appends `v` in decimal (what `v.to_string()` gives).
fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

mod chrono_free {
    use therapy::Record;
    pub fn to_utc_ms(r: &Record, zone: chrono_tz::Tz, offset_s: i64) -> i64 {
        therapy::time::to_utc(r.device_time, zone, offset_s).timestamp_millis()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The key as first written (stored rows hold it): it must not change.
    fn reference_key(parts: &[&str]) -> String {
        let mut s = String::new();
        for p in parts {
            s.push_str(&p.len().to_string());
            s.push(':');
            s.push_str(p);
        }
        let mut h = crate::sha256_hex(s.as_bytes());
        h.truncate(32);
        h
    }

    fn dual() -> Record {
        Record::new(
            "2015-04-29T11:44:45".parse().unwrap(),
            RecordKind::Bolus {
                subtype: therapy::BolusSubtype::Dual,
                programmed_u: Some(6.0),
                delivered_u: Some(6.0),
                duration_min: Some(120),
                normal_programmed_u: Some(4.0),
                normal_delivered_u: Some(4.0),
                extended_programmed_u: Some(2.0),
                extended_delivered_u: Some(2.0),
                extended_duration_min: Some(120),
            },
        )
    }

    /// A dual bolus is stored with its parts and comes back with them; the same bolus stored
    /// before it had parts (an earlier import) is a duplicate, not a second bolus; a pump
    /// wizard's `carbs_g: 0` keys as the older decoder wrote it (without), a file's as it is.
    #[tokio::test]
    async fn bolus_parts_are_stored_and_keyed_as_before() {
        use sea_orm::{ConnectionTrait, Statement};
        let db = crate::connect("sqlite::memory:").await.unwrap();
        crate::migrate(&db).await.unwrap();
        db.execute_unprepared("PRAGMA foreign_keys = OFF").await.unwrap();
        let batch = Batch {
            patient_id: "p",
            device_id: Some("d"),
            upload_id: None,
            rank: SourceRank::Device,
            zone: chrono_tz::UTC,
            clock_offset_s: 0,
        };
        let legacy = Record { kind: dual().kind.without_bolus_parts(), ..dual() };
        let first = insert_records(&db, &batch, &[legacy]).await.unwrap();
        assert_eq!(first.total(), 1);
        let again = insert_records(&db, &batch, &[dual()]).await.unwrap();
        assert_eq!((again.total(), again.duplicates), (0, 1));

        let b2 = Batch { device_id: Some("d2"), ..batch.clone() };
        insert_records(&db, &b2, &[dual()]).await.unwrap();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT record_json, amount, duration_min FROM therapy_events WHERE device_id = 'd2'",
            ))
            .await
            .unwrap()
            .unwrap();
        let json: String = row.try_get("", "record_json").unwrap();
        let mut back: Record = serde_json::from_str(&json).unwrap();
        back.time = None;
        assert_eq!(back, dual());
        assert_eq!(row.try_get::<Option<f64>>("", "amount").unwrap(), Some(6.0));
        assert_eq!(row.try_get::<Option<i32>>("", "duration_min").unwrap(), Some(120));

        let wizard = |carbs: Option<f64>| {
            Record::new(
                "2015-04-29T11:44:40".parse().unwrap(),
                RecordKind::BolusWizard(Box::new(therapy::record::BolusWizard {
                    carbs_g: carbs,
                    ..Default::default()
                })),
            )
        };
        insert_records(&db, &batch, &[wizard(None)]).await.unwrap();
        let w = insert_records(&db, &batch, &[wizard(Some(0.0))]).await.unwrap();
        assert_eq!((w.total(), w.duplicates), (0, 1));
        let file = Batch { rank: SourceRank::File, ..batch.clone() };
        let w = insert_records(&db, &file, &[wizard(Some(0.0))]).await.unwrap();
        assert_eq!(w.total(), 1);
    }

    #[test]
    fn dedup_keys_stay_byte_identical() {
        let mut scratch = Vec::new();
        let long = "x".repeat(1234);
        for parts in [
            vec!["", "cgm", "2024-03-31T02:30:00", "120"],
            vec!["0b6f3c1e-8d1a-4c2b-9a57-1f2e3d4c5b6a", "bg", "2015-01-01T00:05:09", "0", "linked_meter"],
            vec!["dev", "bolus", "{\"type\":\"bolus\",\"subtype\":\"normal\"}"],
            vec!["dev", "note", &long],
        ] {
            let bytes: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
            assert_eq!(dedup_key(&mut scratch, &bytes), reference_key(&parts));
        }
        for v in [0u64, 7, 10, 99, 100, 65_535, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
        }
    }
}
