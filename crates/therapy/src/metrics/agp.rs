//! AGP percentiles per time-of-day bin, without a comparison sort.
//!
//! Two strategies, both exact and giving identical results:
//! - a histogram per bin (`bins × value range` counters), filled in the
//!   time pass and walked once per bin for the ten order statistics that five
//!   interpolated percentiles need — used when that table is small compared
//!   with the number of readings (the usual case: 96 bins × ~400 mg/dL);
//! - otherwise two stable counting sorts (by value, then by bin) that leave
//!   every bin's values ascending in one buffer.

use super::percentile::{interpolate, ranks};
use super::{AGP_PERCENTILES, AgpBin, Reading};

/// Histogram cells allowed per reading before switching to the counting sort.
const HIST_CELLS_PER_READING: usize = 4;
/// Histogram cells always allowed (small inputs).
const HIST_CELLS_MIN: usize = 1 << 16;

/// Collects (bin, value) per reading in the time pass.
pub(crate) enum AgpAccumulator {
    /// `counts[bin * range + (value − vmin)]`.
    Hist { counts: Vec<u32>, range: usize, vmin: u16 },
    /// The bin of every reading, in window order.
    Bins(Vec<u16>),
}

impl AgpAccumulator {
    /// For `n` readings with values in `vmin..=vmax` over `nbins` bins.
    pub(crate) fn new(n: usize, nbins: usize, vmin: u16, vmax: u16) -> Self {
        let range = usize::from(vmax.saturating_sub(vmin)) + 1;
        let cells = nbins.saturating_mul(range);
        if cells <= n.saturating_mul(HIST_CELLS_PER_READING).max(HIST_CELLS_MIN) {
            AgpAccumulator::Hist { counts: vec![0; cells], range, vmin }
        } else {
            AgpAccumulator::Bins(Vec::with_capacity(n))
        }
    }

    /// Forces the counting-sort strategy (for tests).
    #[cfg(test)]
    pub(crate) fn new_sorting(n: usize) -> Self {
        AgpAccumulator::Bins(Vec::with_capacity(n))
    }

    /// Records the next reading of the window (value `v`, within `vmin..=vmax`) in `bin`.
    #[inline]
    pub(crate) fn add(&mut self, bin: u16, v: u16) {
        match self {
            AgpAccumulator::Hist { counts, range, vmin } => {
                if let Some(c) = counts.get_mut(usize::from(bin) * *range + usize::from(v.wrapping_sub(*vmin))) {
                    *c += 1;
                }
            }
            AgpAccumulator::Bins(bins) => bins.push(bin),
        }
    }

    /// The AGP of the window `win` (the readings passed to `add`, in order).
    pub(crate) fn finish(self, win: &[Reading], nbins: usize, bin_min: u32, vmin: u16, vmax: u16) -> Vec<AgpBin> {
        match self {
            AgpAccumulator::Hist { counts, range, vmin } => from_hist(&counts, range, vmin, bin_min),
            AgpAccumulator::Bins(bins) => from_bins(win, &bins, nbins, bin_min, vmin, vmax),
        }
    }
}

fn agp_bin(minute: u32, n: u32, p: [f64; 5]) -> AgpBin {
    AgpBin { minute, p5: p[0], p25: p[1], p50: p[2], p75: p[3], p95: p[4], n }
}

fn from_hist(counts: &[u32], range: usize, vmin: u16, bin_min: u32) -> Vec<AgpBin> {
    let mut out = Vec::new();
    for (b, row) in counts.chunks_exact(range).enumerate() {
        let c: u32 = row.iter().sum();
        if c == 0 {
            continue;
        }
        // The ten ranks needed (lo and hi of each percentile), walked in
        // ascending order through the cumulative counts.
        let mut need = [(0usize, 0usize); 10]; // (rank, slot)
        let mut frac = [0.0f64; 5];
        for (i, &p) in AGP_PERCENTILES.iter().enumerate() {
            let (lo, hi, f) = ranks(c as usize, p).unwrap_or((0, 0, 0.0));
            need[2 * i] = (lo, 2 * i);
            need[2 * i + 1] = (hi, 2 * i + 1);
            frac[i] = f;
        }
        need.sort_unstable();
        let mut value_at = [0u16; 10];
        let mut k = 0;
        let mut below = 0usize; // readings with a smaller value
        for (j, &cnt) in row.iter().enumerate() {
            below += cnt as usize;
            while k < need.len() && need[k].0 < below {
                value_at[need[k].1] = vmin + j as u16;
                k += 1;
            }
            if k == need.len() {
                break;
            }
        }
        let p: [f64; 5] = std::array::from_fn(|i| interpolate(value_at[2 * i], value_at[2 * i + 1], frac[i]));
        out.push(agp_bin(b as u32 * bin_min, c, p));
    }
    out
}

fn from_bins(win: &[Reading], bins: &[u16], nbins: usize, bin_min: u32, vmin: u16, vmax: u16) -> Vec<AgpBin> {
    let n = bins.len();
    if n == 0 || n != win.len() || vmax < vmin {
        return Vec::new();
    }
    let mut bin_count = vec![0u32; nbins];
    for &b in bins {
        bin_count[usize::from(b)] += 1;
    }
    let range = usize::from(vmax - vmin) + 1;
    // Counting sort by value: after the scatter, bucket k spans
    // ends[k-1]..ends[k] (ends[-1] = 0) and holds the bins of the readings of value vmin+k.
    let mut ends = vec![0u32; range];
    for r in win {
        ends[usize::from(r.value_mg_dl - vmin)] += 1;
    }
    let mut acc = 0u32;
    for e in ends.iter_mut() {
        let c = *e;
        *e = acc;
        acc += c;
    }
    let mut bins_by_value = vec![0u16; n];
    for (r, &b) in win.iter().zip(bins) {
        let slot = &mut ends[usize::from(r.value_mg_dl - vmin)];
        bins_by_value[*slot as usize] = b;
        *slot += 1;
    }
    // Stable scatter by bin: values come out ascending within each bin.
    let mut starts = Vec::with_capacity(bin_count.len());
    let mut acc = 0u32;
    for &c in &bin_count {
        starts.push(acc);
        acc += c;
    }
    let mut cursor = starts.clone();
    let mut sorted = vec![0u16; n];
    let mut from = 0usize;
    for (k, &end) in ends.iter().enumerate() {
        let value = vmin + k as u16;
        for &b in &bins_by_value[from..end as usize] {
            let c = &mut cursor[usize::from(b)];
            sorted[*c as usize] = value;
            *c += 1;
        }
        from = end as usize;
    }

    let mut out = Vec::new();
    for (b, (&s, &c)) in starts.iter().zip(&bin_count).enumerate() {
        if c == 0 {
            continue;
        }
        let vals = &sorted[s as usize..(s + c) as usize];
        let p: [f64; 5] = std::array::from_fn(|i| {
            let (lo, hi, f) = ranks(vals.len(), AGP_PERCENTILES[i]).unwrap_or((0, 0, 0.0));
            interpolate(vals[lo], vals[hi], f)
        });
        out.push(agp_bin(b as u32 * bin_min, c, p));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    /// Both strategies agree, and agree with sorting each bin.
    #[test]
    fn strategies_agree() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..50 {
            let n = 1 + (next() % 3000) as usize;
            let nbins = 1 + (next() % 100) as usize;
            let spread = [5u64, 400, 5000][case % 3];
            let win: Vec<Reading> = (0..n)
                .map(|_| Reading { time: DateTime::<Utc>::UNIX_EPOCH, value_mg_dl: (40 + next() % spread) as u16 })
                .collect();
            let bins: Vec<u16> = (0..n).map(|_| (next() % nbins as u64) as u16).collect();
            let vmin = win.iter().map(|r| r.value_mg_dl).min().unwrap();
            let vmax = win.iter().map(|r| r.value_mg_dl).max().unwrap();
            let range = usize::from(vmax - vmin) + 1;
            let mut hist = AgpAccumulator::Hist { counts: vec![0; nbins * range], range, vmin };
            let mut sorting = AgpAccumulator::new_sorting(n);
            for (r, &b) in win.iter().zip(&bins) {
                hist.add(b, r.value_mg_dl);
                sorting.add(b, r.value_mg_dl);
            }
            let a = hist.finish(&win, nbins, 15, vmin, vmax);
            let b = sorting.finish(&win, nbins, 15, vmin, vmax);
            assert_eq!(a, b, "case {case}");
            // Reference: sort each bin and use percentile_sorted.
            for bin in &a {
                let mut vals: Vec<u16> = win
                    .iter()
                    .zip(&bins)
                    .filter(|(_, b)| u32::from(**b) * 15 == bin.minute)
                    .map(|(r, _)| r.value_mg_dl)
                    .collect();
                vals.sort_unstable();
                let p = |q| super::super::percentile_sorted(&vals, q).unwrap();
                assert_eq!((bin.p5, bin.p25, bin.p50, bin.p75, bin.p95), (p(5.0), p(25.0), p(50.0), p(75.0), p(95.0)));
                assert_eq!(bin.n as usize, vals.len());
            }
        }
    }

    #[test]
    fn chooses_the_histogram_when_small() {
        assert!(matches!(AgpAccumulator::new(25_920, 96, 40, 400), AgpAccumulator::Hist { .. }));
        assert!(matches!(AgpAccumulator::new(10, 1440, 0, u16::MAX), AgpAccumulator::Bins(_)));
    }
}
