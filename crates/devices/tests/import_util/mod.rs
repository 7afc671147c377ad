//! Helpers shared by the `import_*` integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use devices::import::{Inspection, inspect_bytes};
use std::collections::BTreeMap;
use std::path::PathBuf;
use therapy::{Record, RecordKind};

/// The shared fixtures folder, or `None` (tests then return early; under `CI=true` a missing
/// folder panics inside `fixtures_dir`).
pub fn dir() -> Option<PathBuf> {
    therapy::fixtures::fixtures_dir()
}

pub fn read(rel: &str) -> Option<Vec<u8>> {
    let p = dir()?.join(rel);
    Some(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

pub fn inspect(rel: &str) -> Option<Inspection> {
    let bytes = read(rel)?;
    Some(inspect_bytes(&bytes, Some(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")))
}

pub fn peer(rel: &str) -> Option<serde_json::Value> {
    Some(serde_json::from_slice(&read(rel)?).unwrap())
}

pub fn counts(ins: &Inspection) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for r in &ins.records {
        *m.entry(r.type_name()).or_insert(0) += 1;
    }
    m
}

/// `(device_time, value, flagged)` of the CGM records, sorted by time.
pub fn cgm(ins: &Inspection) -> Vec<(String, u16, bool)> {
    let mut v: Vec<_> = ins
        .records
        .iter()
        .filter_map(|r| match &r.kind {
            RecordKind::Cgm { value_mg_dl, out_of_range, .. } => {
                Some((r.device_time.to_string(), *value_mg_dl, out_of_range.is_some()))
            }
            _ => None,
        })
        .collect();
    v.sort();
    v
}

pub fn of_type<'a>(ins: &'a Inspection, t: &str) -> Vec<&'a Record> {
    ins.records.iter().filter(|r| r.type_name() == t).collect()
}

/// Mean of the numeric (not flagged) CGM values.
pub fn mean(v: &[(String, u16, bool)]) -> f64 {
    let xs: Vec<f64> = v.iter().filter(|x| !x.2).map(|x| f64::from(x.1)).collect();
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Asserts our CGM readings are what a peer tool counted: number, first and last time, mean.
pub fn assert_matches_peer(ins: &Inspection, peer_rel: &str, flagged: usize) {
    let Some(p) = peer(peer_rel) else { return };
    let v = cgm(ins);
    let numeric: Vec<_> = v.iter().filter(|x| !x.2).cloned().collect();
    assert_eq!(v.len() - numeric.len(), flagged, "flagged Low/High readings");
    let s = &p["data_summary"];
    assert_eq!(numeric.len() as u64, s["n_readings"].as_u64().unwrap(), "reading count vs {peer_rel}");
    let iso = |t: &str| t.replace(' ', "T");
    assert_eq!(numeric.first().unwrap().0, iso(s["first_time"].as_str().unwrap()));
    assert_eq!(numeric.last().unwrap().0, iso(s["last_time"].as_str().unwrap()));
    let peer_mean = p["iglu_python"]["mean_glu"][0]["mean"].as_f64().unwrap();
    let ours = mean(&numeric);
    assert!((ours - peer_mean).abs() < 1e-6, "mean {ours} vs peer {peer_mean}");
}
