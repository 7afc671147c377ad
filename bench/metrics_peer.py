#!/usr/bin/env python3
"""Peer timing for Diabase's glucose metrics.

Reads the CSV of `cargo run --release -p therapy --example gen_bench_data`
(90 days of 5-minute CGM data, Europe/Berlin), and times, on the same
report window:

- a plain numpy pass computing the same metric set as Diabase's
  `glucose_report` (mean, population SD, CV, GMI, the five consensus ranges,
  GRI, CGM active %, the AGP's 5/25/50/75/95th percentiles in 15-minute bins
  of local time, level-2 hypoglycaemia episodes);
- iglu-python (the Python port of the R package iglu): mean_glu, sd_glu,
  cv_glu, gmi, in_range_percent, below_percent, above_percent, quantile_glu,
  gri and active_percent. iglu has no AGP-by-time-of-day function, so it is
  timed on less work than the others (and its SD is the sample SD).

Usage: metrics_peer.py CSV START_MS END_MS DIABASE_JSON [--runs N] [--iglu-runs N]
Prints a table of the figures (to show the three agree) and the timings,
with ratios to Diabase's, and a JSON line for scripts.
"""

import argparse
import json
import sys
import time

import numpy as np


def load(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 2, 3), dtype=np.int64)
    return data[:, 0], data[:, 1], data[:, 2]


def numpy_report(t, minute, g, ws, we, interval_s=300, bin_min=15):
    m = (t >= ws) & (t < we)
    t, minute, g = t[m], minute[m], g[m].astype(np.float64)
    n = g.size
    mean = g.mean()
    sd = g.std()
    pct = lambda mask: np.count_nonzero(mask) / n * 100.0  # noqa: E731
    vl, lo = pct(g < 54), pct((g >= 54) & (g < 70))
    ir = pct((g >= 70) & (g <= 180))
    hi, vh = pct((g > 180) & (g <= 250)), pct(g > 250)
    # Distinct sensor slots (readings rounded to the 5-minute grid).
    slots = np.unique(np.rint((t - ws) / (interval_s * 1000.0))).size
    active = min(slots / ((we - ws) / (interval_s * 1000.0)) * 100.0, 100.0)
    # AGP: sort by (bin, value) once, then percentiles per bin.
    b = minute // bin_min
    order = np.lexsort((g, b))
    bs, gs = b[order], g[order]
    edges = np.searchsorted(bs, np.arange(1440 // bin_min + 1))
    agp = {}
    for i in range(1440 // bin_min):
        seg = gs[edges[i]:edges[i + 1]]
        if seg.size:
            agp[i * bin_min] = np.percentile(seg, [5, 25, 50, 75, 95])
    # Level-2 hypoglycaemia episodes (>= 15 min below 54, gaps <= 2 intervals).
    episodes = 0
    lows = np.flatnonzero(g < 54)
    k = 0
    max_gap = 2 * interval_s * 1000
    while k < lows.size:
        first = last = lows[k]
        k += 1
        while k < lows.size and lows[k] == last + 1 and t[lows[k]] - t[last] <= max_gap:
            last = lows[k]
            k += 1
        end = t[last + 1] if last + 1 < n and t[last + 1] - t[last] <= max_gap else t[last] + interval_s * 1000
        if end - t[first] >= 15 * 60 * 1000:
            episodes += 1
    return {
        "readings": int(n),
        "mean": mean,
        "sd": sd,
        "cv": sd / mean * 100.0,
        "gmi": 3.31 + 0.02392 * mean,
        "active": active,
        "very_low": vl,
        "low": lo,
        "in_range": ir,
        "high": hi,
        "very_high": vh,
        "gri": min(3.0 * vl + 2.4 * lo + 1.6 * vh + 0.8 * hi, 100.0),
        "agp_bins": len(agp),
        "agp_noon": [float(x) for x in agp.get(720, [])],
        "episodes": episodes,
    }


def scalar(x, col=None):
    """The first numeric value of an iglu result (DataFrame, dict or float)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(x, pd.DataFrame):
        cols = [c for c in x.columns if c != "id"]
        c = col if col in x.columns else cols[0]
        return float(x[c].iloc[0])
    if isinstance(x, dict):
        return float(x[col] if col in x else next(iter(x.values())))
    return float(x)


def iglu_frame(t, g, ws, we):
    import pandas as pd

    m = (t >= ws) & (t < we)
    times = pd.to_datetime(t[m], unit="ms", utc=True).tz_convert("Europe/Berlin").tz_localize(None)
    return pd.DataFrame({"id": "bench", "time": times, "gl": g[m].astype(float)})


def iglu_report(df):
    import iglu_python as iglu

    below = iglu.below_percent(df, targets_below=[54, 70])
    above = iglu.above_percent(df, targets_above=[180, 250])
    inr = iglu.in_range_percent(df, target_ranges=[[70, 180]])
    q = iglu.quantile_glu(df, quantiles=[5, 25, 50, 75, 95])
    act = iglu.active_percent(df, dt0=5)
    return {
        "readings": int(len(df)),
        "mean": scalar(iglu.mean_glu(df)),
        "sd": scalar(iglu.sd_glu(df)),
        "cv": scalar(iglu.cv_glu(df)),
        "gmi": scalar(iglu.gmi(df)),
        "active": scalar(act, "active_percent"),
        "below_54": scalar(below, "below_54"),
        "below_70": scalar(below, "below_70"),
        "in_range": scalar(inr),
        "above_180": scalar(above, "above_180"),
        "above_250": scalar(above, "above_250"),
        "gri": scalar(iglu.gri(df)),
        "quantiles_all": [scalar(q, c) for c in list(q.columns)[1:]] if hasattr(q, "columns") else q,
    }


def timeit(fn, runs):
    fn()  # warm up
    t0 = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - t0) * 1000.0 / runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("start_ms", type=int)
    ap.add_argument("end_ms", type=int)
    ap.add_argument("diabase_json")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--iglu-runs", type=int, default=3)
    a = ap.parse_args()

    with open(a.diabase_json) as f:
        dia = json.load(f)
    t, minute, g = load(a.csv)
    npr = numpy_report(t, minute, g, a.start_ms, a.end_ms)
    np_ms = timeit(lambda: numpy_report(t, minute, g, a.start_ms, a.end_ms), a.runs)

    ig, ig_ms, ig_err = None, None, None
    try:
        import iglu_python  # noqa: F401

        df = iglu_frame(t, g, a.start_ms, a.end_ms)
        ig = iglu_report(df)
        ig_ms = timeit(lambda: iglu_report(df), a.iglu_runs)
    except Exception as e:  # the peer is optional: report why it did not run
        ig_err = f"{type(e).__name__}: {e}"

    rows = [
        ("readings", dia["readings"], npr["readings"], ig and ig["readings"]),
        ("mean mg/dL", dia["mean"], npr["mean"], ig and ig["mean"]),
        ("SD mg/dL", dia["sd"], npr["sd"], ig and ig["sd"]),
        ("CV %", dia["cv"], npr["cv"], ig and ig["cv"]),
        ("GMI %", dia["gmi"], npr["gmi"], ig and ig["gmi"]),
        ("CGM active %", dia["active"], npr["active"], ig and ig["active"]),
        ("< 54 %", dia["very_low"], npr["very_low"], ig and ig["below_54"]),
        ("< 70 %", dia["very_low"] + dia["low"], npr["very_low"] + npr["low"], ig and ig["below_70"]),
        ("70-180 %", dia["in_range"], npr["in_range"], ig and ig["in_range"]),
        ("> 180 %", dia["high"] + dia["very_high"], npr["high"] + npr["very_high"], ig and ig["above_180"]),
        ("> 250 %", dia["very_high"], npr["very_high"], ig and ig["above_250"]),
        ("GRI", dia["gri"], npr["gri"], ig and ig["gri"]),
        ("AGP bins", dia["agp_bins"], npr["agp_bins"], "-"),
    ]
    fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa: E731
    print(f"{'figure':<14}{'diabase':>14}{'numpy':>14}{'iglu-python':>14}")
    for name, d, n, i in rows:
        print(f"{name:<14}{fmt(d):>14}{fmt(n):>14}{fmt(i):>14}")
    print(f"AGP at 12:00 (p5..p95): diabase {dia['agp_noon']}  numpy {[round(x, 2) for x in npr['agp_noon']]}")
    print()
    d_ms = dia["mean_ms"]
    print(f"{'implementation':<48}{'mean ms':>10}{'vs diabase':>12}")
    print(f"{'diabase (Rust, release)':<48}{d_ms:>10.3f}{1.0:>11.1f}x")
    print(f"{'numpy pass (same metric set)':<48}{np_ms:>10.3f}{np_ms / d_ms:>11.1f}x")
    if ig_ms is not None:
        print(f"{'iglu-python (subset: no AGP by time of day)':<48}{ig_ms:>10.3f}{ig_ms / d_ms:>11.1f}x")
    else:
        print(f"iglu-python did not run: {ig_err}")
    print(json.dumps({"diabase_ms": d_ms, "numpy_ms": np_ms, "iglu_ms": ig_ms, "readings": npr["readings"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
