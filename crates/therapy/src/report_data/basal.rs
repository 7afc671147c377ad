//! The delivered basal timeline, from pump events.
//!
//! # Rules
//! - A `basal_profile_start` sets the scheduled rate from its instant until
//!   the next one. Pumps log one at every segment of the schedule, so a rate
//!   holds at most [`MAX_BASAL_GAP_MS`] (24 h) without a new one: past that,
//!   data is missing and nothing is assumed.
//! - A temp basal runs for its duration from its instant, at an absolute
//!   rate or at a percentage of the scheduled rate at each instant (the
//!   schedule may change during it). A newer temp basal replaces a running
//!   one; one with duration 0 cancels it. A percentage temp basal with no
//!   known schedule is left out (its rate is unknown).
//! - A `suspend` stops delivery (rate 0) until the next `resume`, at most
//!   24 h; it also cancels a running temp basal, as MiniMed pumps do.
//! - Pieces are clipped to the window and merged when consecutive pieces
//!   have the same kind and rates.

use serde::{Deserialize, Serialize};

/// Longest a scheduled rate, a temp basal or a suspension is assumed to last
/// without a new event (24 hours).
pub const MAX_BASAL_GAP_MS: i64 = 24 * 3_600_000;

/// How a temp basal sets its rate.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum TempRate {
    /// An absolute rate, U/h.
    UPerH(f64),
    /// A percentage of the scheduled rate (100 = unchanged).
    Percent(f64),
}

/// A pump event that changes basal delivery.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BasalEvent {
    /// `basal_profile_start`: the schedule's rate from here.
    Scheduled {
        time_ms: i64,
        rate_u_h: f64,
    },
    /// `temp_basal`.
    Temp {
        time_ms: i64,
        rate: TempRate,
        duration_min: u32,
    },
    Suspend {
        time_ms: i64,
    },
    Resume {
        time_ms: i64,
    },
}

impl BasalEvent {
    pub fn time_ms(&self) -> i64 {
        match *self {
            BasalEvent::Scheduled { time_ms, .. }
            | BasalEvent::Temp { time_ms, .. }
            | BasalEvent::Suspend { time_ms }
            | BasalEvent::Resume { time_ms } => time_ms,
        }
    }

    fn valid(&self) -> bool {
        match *self {
            BasalEvent::Scheduled { rate_u_h, .. } => super::usable(rate_u_h),
            BasalEvent::Temp { rate: TempRate::UPerH(r) | TempRate::Percent(r), .. } => super::usable(r),
            BasalEvent::Suspend { .. } | BasalEvent::Resume { .. } => true,
        }
    }
}

/// What delivered the basal of a piece.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum BasalKind {
    Scheduled,
    Temp,
    Suspended,
}

/// Basal delivered at a constant rate over `[start_ms, end_ms)`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct BasalPiece {
    pub start_ms: i64,
    pub end_ms: i64,
    pub kind: BasalKind,
    /// The delivered rate, U/h (0 while suspended).
    pub rate_u_h: f64,
    /// The schedule's rate at that time, when known.
    pub scheduled_u_h: Option<f64>,
    /// The temp basal's percentage, when it was set as one.
    pub percent: Option<f64>,
}

impl BasalPiece {
    /// Units delivered by this piece.
    pub fn units(&self) -> f64 {
        self.rate_u_h * (self.end_ms - self.start_ms).max(0) as f64 / 3_600_000.0
    }

    /// Units delivered inside `[a, b)`.
    pub fn units_within(&self, a: i64, b: i64) -> f64 {
        let s = self.start_ms.max(a);
        let e = self.end_ms.min(b);
        if e > s { self.rate_u_h * (e - s) as f64 / 3_600_000.0 } else { 0.0 }
    }
}

/// The delivered basal timeline of `events` (any order) inside
/// `[start_ms, end_ms)`. Pass the events from [`MAX_BASAL_GAP_MS`] before
/// `start_ms` on, so the state at the window's start is known.
pub fn basal_timeline(events: &[BasalEvent], start_ms: i64, end_ms: i64) -> Vec<BasalPiece> {
    if end_ms <= start_ms {
        return Vec::new();
    }
    let mut ev: Vec<BasalEvent> = events.iter().filter(|e| e.valid() && e.time_ms() < end_ms).copied().collect();
    ev.sort_by_key(BasalEvent::time_ms);

    // Every instant at which the state may change.
    let mut points: Vec<i64> = Vec::with_capacity(ev.len() * 2 + 2);
    points.push(start_ms);
    points.push(end_ms);
    for e in &ev {
        let t = e.time_ms();
        points.push(t);
        match *e {
            BasalEvent::Temp { duration_min, .. } => points.push(t.saturating_add(temp_ms(duration_min))),
            BasalEvent::Scheduled { .. } | BasalEvent::Suspend { .. } => {
                points.push(t.saturating_add(MAX_BASAL_GAP_MS))
            }
            BasalEvent::Resume { .. } => {}
        }
    }
    points.retain(|p| (start_ms..=end_ms).contains(p));
    points.sort_unstable();
    points.dedup();

    let mut out: Vec<BasalPiece> = Vec::new();
    let mut sched: Option<(f64, i64)> = None; // (rate, valid until)
    let mut temp: Option<(TempRate, i64)> = None; // (rate, end)
    let mut susp: Option<i64> = None; // valid until
    let mut i = 0;
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        while let Some(e) = ev.get(i).filter(|e| e.time_ms() <= a) {
            match *e {
                BasalEvent::Scheduled { time_ms, rate_u_h } => {
                    sched = Some((rate_u_h, time_ms.saturating_add(MAX_BASAL_GAP_MS)))
                }
                BasalEvent::Temp { time_ms, rate, duration_min } => {
                    temp = (duration_min > 0).then(|| (rate, time_ms.saturating_add(temp_ms(duration_min))));
                }
                BasalEvent::Suspend { time_ms } => {
                    susp = Some(time_ms.saturating_add(MAX_BASAL_GAP_MS));
                    temp = None;
                }
                BasalEvent::Resume { .. } => susp = None,
            }
            i += 1;
        }
        let scheduled = sched.filter(|s| a < s.1).map(|s| s.0);
        let piece = if susp.is_some_and(|until| a < until) {
            Some((BasalKind::Suspended, 0.0, None))
        } else if let Some((rate, _)) = temp.filter(|t| a < t.1) {
            match rate {
                TempRate::UPerH(r) => Some((BasalKind::Temp, r, None)),
                TempRate::Percent(p) => scheduled.map(|s| (BasalKind::Temp, s * p / 100.0, Some(p))),
            }
        } else {
            scheduled.map(|s| (BasalKind::Scheduled, s, None))
        };
        let Some((kind, rate_u_h, percent)) = piece else { continue };
        if let Some(last) = out.last_mut()
            && last.end_ms == a
            && last.kind == kind
            && last.rate_u_h == rate_u_h
            && last.scheduled_u_h == scheduled
            && last.percent == percent
        {
            last.end_ms = b;
            continue;
        }
        out.push(BasalPiece { start_ms: a, end_ms: b, kind, rate_u_h, scheduled_u_h: scheduled, percent });
    }
    out
}

fn temp_ms(duration_min: u32) -> i64 {
    (i64::from(duration_min) * 60_000).min(MAX_BASAL_GAP_MS)
}

/// The timeline as the segments [`crate::metrics::insulin_summary`] takes.
pub fn basal_segments(pieces: &[BasalPiece]) -> Vec<crate::metrics::BasalSegment> {
    pieces
        .iter()
        .filter_map(|p| {
            Some(crate::metrics::BasalSegment {
                start: chrono::DateTime::from_timestamp_millis(p.start_ms)?,
                end: chrono::DateTime::from_timestamp_millis(p.end_ms)?,
                rate_u_h: p.rate_u_h,
            })
        })
        .collect()
}
