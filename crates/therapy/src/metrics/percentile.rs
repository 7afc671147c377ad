//! Percentiles with linear interpolation between closest ranks: numpy's
//! default (`method="linear"`), R's `quantile(type = 7)`, pandas' default.

/// The `p`-th percentile (0–100) of `sorted` (ascending). `None` when empty.
///
/// With `n` values the fractional rank is `h = (n − 1)·p/100`; the result is
/// `x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])`.
pub fn percentile_sorted(sorted: &[u16], p: f64) -> Option<f64> {
    let (lo, hi, frac) = ranks(sorted.len(), p)?;
    Some(interpolate(sorted[lo], sorted[hi], frac))
}

/// For `n` sorted values, the two closest ranks of the `p`-th percentile and
/// the weight of the upper one: the percentile is
/// `x[lo] + frac·(x[hi] − x[lo])`. `None` when `n == 0`.
pub(crate) fn ranks(n: usize, p: f64) -> Option<(usize, usize, f64)> {
    if n == 0 {
        return None;
    }
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 100.0) };
    let h = (n - 1) as f64 * p / 100.0;
    // h is finite and within 0..=n-1, so the casts below are exact and in range.
    let lo = (h.floor() as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    Some((lo, hi, h - lo as f64))
}

#[inline]
pub(crate) fn interpolate(a: u16, b: u16, frac: f64) -> f64 {
    let (a, b) = (f64::from(a), f64::from(b));
    a + frac * (b - a)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_linear() {
        // numpy.percentile([1,2,3,4], [5,25,50,75,95]) = 1.15, 1.75, 2.5, 3.25, 3.85
        let x = [1, 2, 3, 4];
        let got: Vec<f64> = [5.0, 25.0, 50.0, 75.0, 95.0].iter().map(|&p| percentile_sorted(&x, p).unwrap()).collect();
        let want = [1.15, 1.75, 2.5, 3.25, 3.85];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        // numpy.percentile([10, 20, 40, 80, 160], [5, 25, 50, 75, 95]) = 12, 20, 40, 80, 144
        let x = [10, 20, 40, 80, 160];
        let got: Vec<f64> = [5.0, 25.0, 50.0, 75.0, 95.0].iter().map(|&p| percentile_sorted(&x, p).unwrap()).collect();
        let want = [12.0, 20.0, 40.0, 80.0, 144.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-9, "{got:?}");
        }
        // numpy.percentile(range(1, 11), 95) = 9.55; 5 -> 1.45
        let x: Vec<u16> = (1..=10).collect();
        assert!((percentile_sorted(&x, 95.0).unwrap() - 9.55).abs() < 1e-12);
        assert!((percentile_sorted(&x, 5.0).unwrap() - 1.45).abs() < 1e-12);
    }

    #[test]
    fn edges() {
        assert_eq!(percentile_sorted(&[], 50.0), None);
        assert_eq!(percentile_sorted(&[7], 5.0), Some(7.0));
        assert_eq!(percentile_sorted(&[7], 95.0), Some(7.0));
        assert_eq!(percentile_sorted(&[1, 3], 0.0), Some(1.0));
        assert_eq!(percentile_sorted(&[1, 3], 100.0), Some(3.0));
        assert_eq!(percentile_sorted(&[1, 3], 150.0), Some(3.0));
        assert_eq!(percentile_sorted(&[1, 3], f64::NAN), Some(1.0));
    }
}
