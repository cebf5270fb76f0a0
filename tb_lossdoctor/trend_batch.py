"""`analyse` of many curves at once: the curves of a sweep mostly share their logging schedule.

Curves logged at the same steps, finite at every point, are stacked as the rows of one matrix and
their bin medians, point noise and levels computed by row-wise numpy operations: one call per
matrix instead of ~35 calls per curve, whose fixed cost dominated on short curves. Each row goes
through exactly the arithmetic `trend.analyse` does on its own (the same elementwise operations,
the same partitions per row), so the stats are the same to the last bit; every other curve (a
non-finite point, a step sequence of its own, very short or very long) is analysed alone.

The trend over the recent window, which the rules read on nearly every main curve, is fitted
here too (the same window for every row); the other windows are still fitted on demand.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tb_lossdoctor.settings import Settings
from tb_lossdoctor.trend import (
    _MAD_TO_SIGMA,
    _MEAN_DEVIATION_TO_SIGMA,
    _SQRT_6,
    CurveStats,
    _pairs,
    analyse,
    bin_layout,
    bin_medians,
    rank_z,
    recent_first_bin,
    window_fit,
)

# Fewer curves than this on one step sequence are analysed one by one (nothing to share).
MIN_ROWS = 2
# Curves of under 4 points have no point noise to measure, and long curves gain little from
# sharing the per-call cost: both are analysed one by one.
MIN_POINTS, MAX_POINTS = 4, 10_000


def analyse_many(curves: Sequence[Tuple[np.ndarray, np.ndarray]], settings: Settings) -> List[CurveStats]:
    """`analyse(steps, values, settings)` of each (steps, oriented values) curve, in order."""
    out: List[Optional[CurveStats]] = [None] * len(curves)
    for rows in _by_steps(curves).values():
        matrix = np.stack([np.asarray(curves[i][1], dtype=np.float64) for i in rows])
        finite = np.isfinite(matrix).all(axis=1)  # a curve with a non-finite point is analysed alone
        if int(finite.sum()) >= MIN_ROWS:
            shared = np.asarray(curves[rows[0]][0], dtype=np.int64)
            together = np.asarray(rows)[finite].tolist()
            for i, stats in zip(together, analyse_rows(shared, matrix[finite], settings)):
                out[i] = stats
    return [stats if stats is not None else analyse(steps, values, settings)
            for stats, (steps, values) in zip(out, curves)]


def _by_steps(curves: Sequence[Tuple[np.ndarray, np.ndarray]]) -> Dict[bytes, List[int]]:
    """Indices of the curves that may be analysed together, by their step sequence."""
    groups: Dict[bytes, List[int]] = {}
    for i, (steps, values) in enumerate(curves):
        steps = np.asarray(steps, dtype=np.int64)
        if MIN_POINTS <= steps.size <= MAX_POINTS and np.size(values) == steps.size:
            groups.setdefault(steps.tobytes(), []).append(i)
    return {key: rows for key, rows in groups.items() if len(rows) >= MIN_ROWS}


def analyse_rows(steps: np.ndarray, values: np.ndarray, settings: Settings) -> List[CurveStats]:
    """`analyse` of each row of `values` (curves x points, every value finite), all logged at
    `steps` (sorted int64, at least `MIN_POINTS`)."""
    n = steps.size
    scales = _row_magnitudes(values)
    scaled = values / scales[:, None]
    layout = bin_layout(steps, settings.bins) if n > settings.bins else None
    bin_steps, medians, per_bin = bin_medians(steps, scaled, settings.bins, layout)
    bin_values = medians * scales[:, None]
    smoothed = bin_values / scales[:, None]  # the trends are fitted in scaled units
    noise = row_point_noise(scaled) * scales
    smooth_noise = row_point_noise(bin_values) if per_bin > 1.0 and bin_steps.size >= MIN_POINTS else None
    first = min(settings.start_max_points, max(1, int(n * settings.start_fraction)))
    starts = row_medians(scaled[:, :first] * scales[:, None])  # as `_levels`, on scaled * scale
    k = max(1, min(settings.end_bins, bin_steps.size // 10))
    ends = row_medians(bin_values[:, -k:])
    best = bin_values.argmin(axis=1)
    best_point = scaled.argmin(axis=1)
    for array in (bin_steps, bin_values, smoothed, scaled):
        array.setflags(write=False)  # shared by the curves' stats: nothing may change them
    out = []
    for r in range(values.shape[0]):
        scale = float(scales[r])
        stats = CurveStats(points=n, finite_points=n)
        stats.last_finite_step, stats.last_finite_value = int(steps[-1]), float(values[r, -1])
        stats.first_step, stats.final_step = int(steps[0]), int(steps[-1])
        stats.bin_steps, stats.bin_values, stats.points_per_bin = bin_steps, bin_values[r], per_bin
        stats.noise = noise[r]
        stats.start, stats.end = float(starts[r]), float(ends[r])
        stats.best, stats.best_step = float(bin_values[r, best[r]]), int(bin_steps[best[r]])
        stats.best_point, stats.best_point_step = float(values[r, best_point[r]]), int(steps[best_point[r]])
        stats.trend_inputs = (bin_steps, smoothed[r], settings, scale)
        stats.spike_inputs = (steps, scaled[r], settings, scale, layout)
        if smooth_noise is not None:
            stats.__dict__["smooth_noise"] = smooth_noise[r]  # the cached_property's own slot
        out.append(stats)
    _fit_recent_windows(out, bin_steps, smoothed, scales, settings)
    return out


def _fit_recent_windows(
    stats: List[CurveStats], bin_steps: np.ndarray, smoothed: np.ndarray, scales: np.ndarray, settings: Settings
) -> None:
    """Memoise in each curve's `fits` the window fit of its recent window (`CurveStats.recent`),
    as `trend.fit_window` would compute it. `smoothed`: the curves' scaled bin values."""
    first = recent_first_bin(bin_steps, settings)
    x, y = bin_steps[first:], smoothed[:, first:]
    length = float(x[-1] - x[0])
    if x.size < 3 or length <= 0:
        for curve in stats:
            curve.fits[first] = None
        return
    slopes, scatters, sign_sums = row_line_fits(x - x[0], y)
    for r, curve in enumerate(stats):
        s = float(sign_sums[r])
        curve.fits[first] = window_fit(x, float(slopes[r]) * length, float(scatters[r]), curve, settings,
                                       float(scales[r]), lambda s=s: rank_z(s, x.size))


def row_line_fits(x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of `y` (over the shared `x`, at least 3 points): the Theil-Sen slope, the
    robust scatter of the residuals around the line (as `trend.fit_window`), and the sum of
    pairwise signs (the Mann-Kendall statistic)."""
    i, j = _pairs(x.size)
    dx = x[j] - x[i]
    keep = dx != 0
    rises = y[:, j] - y[:, i]
    if keep.any():
        slopes = row_medians(rises[:, keep] / dx[keep])
    else:
        slopes = np.zeros(y.shape[0])
    intercepts = row_medians(y - slopes[:, None] * x)
    residuals = y - (intercepts[:, None] + slopes[:, None] * x)
    scatters = _MAD_TO_SIGMA * row_medians(np.abs(residuals - row_medians(residuals)[:, None]))
    return slopes, scatters, np.sign(rises).sum(axis=1)


def _row_magnitudes(values: np.ndarray) -> np.ndarray:
    """`trend._magnitude` of each row: its largest absolute value, 1 when that is zero."""
    top = np.abs(values).max(axis=1)
    return np.where(np.isfinite(top) & (top > 0), top, 1.0)


def row_medians(a: np.ndarray) -> np.ndarray:
    """`trend.median` of each row of a 2-D array with at least one column (the same partition
    ranks, so the same values)."""
    n = a.shape[1]
    half = n // 2
    part = a.copy()
    if n % 2:
        part.partition(half, axis=1)
        return part[:, half]
    part.partition((half - 1, half), axis=1)
    return 0.5 * (part[:, half - 1] + part[:, half])


def row_point_noise(values: np.ndarray) -> np.ndarray:
    """`trend.point_noise` of each row (rows of at least 4 values)."""
    second = values[:, 2:] - 2.0 * values[:, 1:-1] + values[:, :-2]
    centred = np.abs(second - row_medians(second)[:, None])
    sigma = _MAD_TO_SIGMA * row_medians(centred) / _SQRT_6
    for r in np.flatnonzero(sigma == 0.0):  # quantised or constant: the mean deviation, as there
        sigma[r] = _MEAN_DEVIATION_TO_SIGMA * float(np.mean(centred[r])) / _SQRT_6
    return sigma
