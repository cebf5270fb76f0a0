"""The trend classifier: turns one curve into the shape facts the rules reason about.

Conventions: values are *oriented* before analysis (accuracy-like metrics are negated), so
"lower is better" and "falling" means improving for every metric. Steps are the run's own units;
nothing assumes even spacing. Every measure is a difference of levels divided by another
difference or by the curve's noise, so adding a constant or multiplying by a positive factor
changes no verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from tb_lossdoctor.settings import Settings

FALLING, FLAT, RISING = "falling", "flat", "rising"
_MAD_TO_SIGMA = 1.4826  # a normal sample's standard deviation per median absolute deviation
_MEDIAN_SE = 1.2533  # the standard error of a median is sqrt(pi/2) times the mean's
_MEAN_DEVIATION_TO_SIGMA = 1.2533  # a normal sample's standard deviation per mean absolute deviation
_SQRT_6 = np.sqrt(6.0)  # deviation of a second difference of independent unit noise


@lru_cache(maxsize=128)
def _pairs(n: int) -> Tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) with i < j, for the pairwise statistics of short smoothed curves."""
    return np.triu_indices(n, k=1)


@dataclass
class Trend:
    """Direction of a curve over a window, with the robust change behind it."""

    direction: str
    change: float  # fitted change across the window, value units (negative = improving)
    stderr: float  # standard error of that change
    start_step: int
    end_step: int
    significant: bool = False  # slope and rank tests agree there is a trend

    def direction_against(self, value_range: float, settings: Settings) -> str:
        """The direction judged against another range (e.g. both curves of a pair)."""
        if not self.significant or abs(self.change) < settings.trend_min_change * value_range:
            return FLAT
        return FALLING if self.change < 0 else RISING


@dataclass
class CurveStats:
    """Shape facts of one oriented curve (lower is better)."""

    points: int  # all points, finite or not
    finite_points: int
    first_nonfinite_step: Optional[int] = None
    first_nonfinite_value: float = float("nan")
    nonfinite_fraction: float = 0.0
    recovered_after_nonfinite: bool = False
    last_finite_step: Optional[int] = None
    last_finite_value: float = float("nan")
    # Over the finite points (before the first non-finite one, unless the curve recovered):
    bin_steps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bin_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    points_per_bin: float = 1.0
    noise: float = 0.0  # robust point-to-point noise (sigma), value units
    start: float = float("nan")  # smoothed level at the start
    best: float = float("nan")  # best smoothed level
    best_step: int = 0
    best_point: float = float("nan")  # the single best logged point (what a checkpoint holds)
    best_point_step: int = 0
    end: float = float("nan")  # smoothed level at the end
    first_step: int = 0
    final_step: int = 0
    # (bin steps, smoothed values / scale, settings, scale) for the trends computed on demand below.
    trend_inputs: Optional[tuple] = field(default=None, repr=False)
    # Window fits by first bin (every trend is over a suffix of the bins), see `trend_from_bin`.
    fits: dict = field(default_factory=dict, repr=False)
    # (steps, scaled values, settings, scale, bin layout) for the spikes, found on first use: only the main
    # curve of a run is searched for spikes, and most series are not main curves.
    spike_inputs: Optional[tuple] = field(default=None, repr=False)

    @cached_property
    def spikes(self) -> List[Tuple[int, float]]:
        """Transient spikes: (step, height above the local baseline, value units)."""
        if self.spike_inputs is None:
            return []
        steps, scaled, settings, scale, layout = self.spike_inputs
        return find_spikes(steps, scaled, settings, scale, self.bin_steps, self.trend_inputs[1], layout)

    @property
    def improvement(self) -> float:
        return max(0.0, self.start - self.best)

    @cached_property
    def recent(self) -> Optional[Trend]:
        """Trend over the recent window (the last `recent_fraction` of the steps), judged against
        the whole curve's range; None for a curve with under three bins there (or no span).
        Computed on first use: the rules often decide on a validation curve's other windows."""
        if self.trend_inputs is None:
            return None
        bin_steps, scaled, settings, _ = self.trend_inputs
        return self.trend_from_bin(recent_first_bin(bin_steps, settings), value_range_of(scaled))

    @property
    def has_recent(self) -> bool:
        """Whether `recent` is a trend (not None), without fitting it: the recent window holds
        three bins or more over a positive step span."""
        if self.trend_inputs is None:
            return False
        bin_steps, _, settings, _ = self.trend_inputs
        first = recent_first_bin(bin_steps, settings)
        return bin_steps.size - first >= 3 and float(bin_steps[-1] - bin_steps[first]) > 0

    @cached_property
    def overall(self) -> Optional[Trend]:
        """Trend over the whole curve (computed on first use: most verdicts never need it)."""
        return self.trend_from_bin(0)

    @cached_property
    def since_best(self) -> Optional[Trend]:
        """Trend from just after the best point to the end (computed on first use)."""
        if self.trend_inputs is None:
            return None
        bin_steps, _, settings, _ = self.trend_inputs
        # Strictly after the best point: a window that starts at its own minimum is biased upward.
        first = int(bin_steps.searchsorted(self.best_step, side="right"))
        if bin_steps.size - first < settings.min_window_bins:
            return None
        return self.trend_from_bin(first)

    def trend_from(self, step: float) -> Optional[Trend]:
        """Trend of the smoothed curve from `step` to the end (pairs judge both curves over the
        same window); None with fewer than `min_window_bins` points there."""
        if self.trend_inputs is None:
            return None
        bin_steps, _, settings, _ = self.trend_inputs
        first = int(bin_steps.searchsorted(step, side="left"))  # the first bin at `step` or later
        if bin_steps.size - first < min(settings.min_window_bins, bin_steps.size):
            return None
        return self.trend_from_bin(first)

    def trend_from_bin(self, first: int, value_range: Optional[float] = None) -> Optional[Trend]:
        """Trend of the smoothed curve from bin `first` to the end, judged meaningful against
        `value_range` (scaled units; by default the window's own range).

        The fit is memoised by `first`: the recent window, the whole curve and a pair's shared
        window often start at the same bin, and the fit does not depend on the range.
        """
        if self.trend_inputs is None:
            return None
        bin_steps, scaled, settings, scale = self.trend_inputs
        if first not in self.fits:
            self.fits[first] = fit_window(bin_steps[first:], scaled[first:], self, settings, scale)
        fit = self.fits[first]
        if fit is None:
            return None
        if value_range is None:
            value_range = value_range_of(scaled[first:])
        return fit.judged(value_range, settings, scale)

    def range_from(self, step: float) -> float:
        """Range of the smoothed curve from `step` on (the yardstick over steps both curves of a
        pair cover: a validation curve first evaluated after the early drop never saw it)."""
        inside = self.bin_values[self.bin_steps >= step]
        return value_range_of(inside) if inside.size else 0.0

    @cached_property
    def smooth_noise(self) -> float:
        """Point-to-point swings of the smoothed curve (bin medians), value units: minibatch
        noise averages out here, a learning rate that is too high does not."""
        if self.points_per_bin <= 1.0:
            return self.noise
        return point_noise(self.bin_values)

    @property
    def leftover_noise(self) -> float:
        """The point noise a bin median still carries, value units: sqrt(pi/2) sigma / sqrt(n)
        for n points per bin (zero for curves with under two points per bin: each point is its
        own bin, often already an average such as a per-epoch loss)."""
        if self.points_per_bin < 2.0:
            return 0.0
        return _MEDIAN_SE * self.noise / float(np.sqrt(self.points_per_bin))

    @cached_property
    def swing(self) -> float:
        """Swings of the smoothed curve beyond the minibatch noise its bin medians still carry,
        value units: what a learning rate that is too high adds."""
        if self.points_per_bin < 2.0:
            return self.smooth_noise
        return float(np.sqrt(max(self.smooth_noise ** 2 - self.leftover_noise ** 2, 0.0)))

    @property
    def chance_improvement(self) -> float:
        """How far below its start a flat curve's best smoothed point falls by noise alone:
        `best_of_many_z` standard errors of a bin median (sqrt(pi/2) sigma / sqrt(points))."""
        if self.trend_inputs is None:
            return 0.0
        z = self.trend_inputs[2].best_of_many_z
        return z * _MEDIAN_SE * self.noise / np.sqrt(max(self.points_per_bin, 1.0))

    @property
    def value_range(self) -> float:
        return value_range_of(self.bin_values) if self.bin_values.size else 0.0

    @property
    def span(self) -> int:
        return int(self.final_step - self.first_step)


def analyse(steps: np.ndarray, values: np.ndarray, settings: Settings) -> CurveStats:
    """Compute `CurveStats` of an oriented curve; `steps` strictly increasing."""
    steps = np.asarray(steps, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    all_finite = bool(finite.all())
    stats = CurveStats(points=int(values.size),
                       finite_points=int(values.size) if all_finite else int(finite.sum()))
    if values.size == 0:
        return stats
    if not all_finite:
        first_bad = int(np.argmin(finite))
        stats.first_nonfinite_step = int(steps[first_bad])
        stats.first_nonfinite_value = float(values[first_bad])
        stats.nonfinite_fraction = float((~finite).mean())
        stats.recovered_after_nonfinite = bool(finite[-1]) and first_bad < values.size - 1
        # A run that recovered is judged on all its finite points (masked, not cut at the first
        # bad one); a run that died is judged on what came before.
        keep = finite if stats.recovered_after_nonfinite else np.arange(values.size) < first_bad
        steps, values = steps[keep], values[keep]
    if values.size == 0:
        return stats
    stats.last_finite_step, stats.last_finite_value = int(steps[-1]), float(values[-1])
    stats.first_step, stats.final_step = int(steps[0]), int(steps[-1])
    # Rescale to unit magnitude so huge (1e38) or tiny (1e-38) values stay in float range;
    # every measure below is a ratio, so this changes no verdict.
    scale = _magnitude(values)
    scaled = values / scale
    # The bins of a dense curve, found once: the spike search measures its noise per bin too.
    layout = bin_layout(steps, settings.bins) if values.size > settings.bins else None
    bin_steps, bin_values, per_bin = bin_medians(steps, scaled, settings.bins, layout)
    stats.bin_steps, stats.bin_values, stats.points_per_bin = bin_steps, bin_values * scale, per_bin
    stats.noise = point_noise(scaled) * scale
    _levels(stats, scaled * scale, settings)
    best_point = int(scaled.argmin())
    stats.best_point, stats.best_point_step = float(values[best_point]), int(steps[best_point])
    smoothed = stats.bin_values / scale  # the trends are fitted in scaled units
    stats.trend_inputs = (bin_steps, smoothed, settings, scale)
    stats.spike_inputs = (steps, scaled, settings, scale, layout)
    return stats


def median(a: np.ndarray) -> float:
    """Median of a non-empty 1-D array (np.median without its per-call overhead: the engine
    takes a dozen medians per curve, and that overhead dominated on short curves)."""
    n = a.size
    half = n // 2
    part = a.copy()  # the method, not np.partition: its dispatch wrapper cost as much as the work
    if n % 2:
        part.partition(half)
        return float(part[half])
    part.partition((half - 1, half))
    return 0.5 * float(part[half - 1] + part[half])


def _magnitude(values: np.ndarray) -> float:
    """Largest absolute value (1 when there is none, or it is zero or not finite)."""
    top = float(np.abs(values).max()) if values.size else 0.0
    return top if math.isfinite(top) and top > 0 else 1.0


def bin_ids(steps: np.ndarray, bins: int) -> np.ndarray:
    """Index of the equal-width step bin of each point (non-decreasing, as steps are sorted)."""
    lo, hi = float(steps[0]), float(steps[-1])
    width = (hi - lo) / bins if hi > lo else 1.0
    return np.minimum(((steps - lo) / width).astype(np.int64), bins - 1)


def _run_starts(ids: np.ndarray) -> np.ndarray:
    """Indices where a new run of equal ids begins."""
    change = np.empty(ids.size, dtype=bool)
    change[0] = True
    np.not_equal(ids[1:], ids[:-1], out=change[1:])
    return change.nonzero()[0]


def _run_lengths(starts: np.ndarray, n: int) -> np.ndarray:
    lengths = np.empty(starts.size, dtype=np.int64)
    lengths[:-1] = starts[1:] - starts[:-1]
    lengths[-1] = n - starts[-1]
    return lengths


@dataclass(frozen=True)
class BinLayout:
    """Which points of a sorted curve fall in which equal-width step bin (empty bins dropped)."""

    ids: np.ndarray  # bin index of each point, non-decreasing
    starts: np.ndarray  # index of the first point of each non-empty bin
    counts: np.ndarray  # points in each non-empty bin
    middles: np.ndarray  # index of the median step of each non-empty bin (the lower middle)
    even: bool  # every non-empty bin holds the same number of points


# The curves of a sweep are mostly logged at the same steps: their layouts are found once.
# Keyed by the steps' bytes, so only curves of up to _MAX_CACHED_POINTS points are remembered
# (at most 64 keys of 80 kB).
_LAYOUTS: Dict[Tuple[str, bytes, int], BinLayout] = {}
_MAX_LAYOUTS = 64
_MAX_CACHED_POINTS = 10_000


def bin_layout(steps: np.ndarray, bins: int) -> BinLayout:
    """The `BinLayout` of `bins` equal-width step bins over sorted, non-empty int64 `steps`
    (remembered for recent step sequences; its arrays are read-only)."""
    key = (steps.dtype.str, steps.tobytes(), bins) if steps.size <= _MAX_CACHED_POINTS else None
    layout = _LAYOUTS.get(key) if key is not None else None
    if layout is None:
        ids = bin_ids(steps, bins)
        starts = _run_starts(ids)
        counts = _run_lengths(starts, steps.size)
        middles = starts + (counts - 1) // 2
        for array in (ids, starts, counts, middles):
            array.setflags(write=False)
        layout = BinLayout(ids, starts, counts, middles, bool((counts == counts[0]).all()))
        if key is not None:
            if len(_LAYOUTS) >= _MAX_LAYOUTS:
                _LAYOUTS.clear()
            _LAYOUTS[key] = layout
    return layout


def grouped_medians(values: np.ndarray, layout: BinLayout) -> np.ndarray:
    """Median of each bin of `layout` (contiguous slices of `values`; of each row's, for a 2-D
    array of curves logged at the same steps).

    Evenly filled bins are rows of a reshape, partitioned at once; otherwise sorting by
    (bin, value) keeps the slices in place and orders the values inside each one, so one
    lexsort gives every median.
    """
    starts, counts = layout.starts, layout.counts
    if layout.even:
        m = int(counts[0])
        lo, hi = (m - 1) // 2, m // 2
        part = values.reshape(*values.shape[:-1], counts.size, m).copy()  # np.partition minus its wrapper
        part.partition((lo, hi), axis=-1)
        return 0.5 * (part[..., lo] + part[..., hi])
    if values.ndim > 1:
        return np.stack([grouped_medians(row, layout) for row in values])
    order = np.lexsort((values, layout.ids))
    ranked = values[order]
    return 0.5 * (ranked[starts + (counts - 1) // 2] + ranked[starts + counts // 2])


def bin_medians(
    steps: np.ndarray, values: np.ndarray, bins: int, layout: Optional[BinLayout] = None
) -> Tuple[np.ndarray, np.ndarray, float]:
    """Medians of equal-width step bins (empty bins dropped): (bin steps, medians, points/bin).
    `values` may be 2-D, a row per curve logged at `steps`: medians per row.

    With `bins` or fewer points every point is its own bin. The step of a bin is the median
    step of its points, so uneven spacing is respected. `layout`: the `bin_layout` of `steps`,
    when the caller already has it.
    """
    n = values.shape[-1]
    if n <= bins:
        return steps.astype(np.float64), values.copy(), 1.0
    layout = layout or bin_layout(steps, bins)
    medians = grouped_medians(values, layout)
    bin_step = steps[layout.middles]
    return bin_step.astype(np.float64), medians, float(n) / layout.starts.size


def point_noise(values: np.ndarray) -> float:
    """Robust standard deviation of point-to-point noise, value units.

    From second differences, which cancel any locally straight trend (a steadily accelerating
    curve is not noise): for independent noise of deviation s they have deviation s * sqrt(6).
    """
    if values.size < 4:
        return 0.0
    second = values[2:] - 2.0 * values[1:-1] + values[:-2]
    centred = np.abs(second - median(second))
    sigma = _MAD_TO_SIGMA * median(centred) / _SQRT_6
    if sigma == 0.0:  # quantised or mostly constant values: fall back to the mean deviation
        sigma = _MEAN_DEVIATION_TO_SIGMA * float(np.mean(centred)) / _SQRT_6
    return sigma


def _levels(stats: CurveStats, raw: np.ndarray, settings: Settings) -> None:
    """Start level (first raw points: the smoothed first bin may already be past the early
    drop), best and end levels of the smoothed curve."""
    values, steps = stats.bin_values, stats.bin_steps
    first = min(settings.start_max_points, max(1, int(raw.size * settings.start_fraction)))
    stats.start = median(raw[:first])
    k = max(1, min(settings.end_bins, values.size // 10))  # one bin for short curves
    stats.end = median(values[-k:])
    best = int(values.argmin())
    stats.best, stats.best_step = float(values[best]), int(steps[best])


def theil_sen(x: np.ndarray, y: np.ndarray) -> Tuple[float, float]:
    """Robust line fit: (slope, intercept), the medians of pairwise slopes and of residuals."""
    if x.size < 2:
        return 0.0, float(y[0]) if y.size else 0.0
    i, j = _pairs(x.size)
    dx = x[j] - x[i]
    keep = dx != 0
    slopes = (y[j] - y[i])[keep] / dx[keep]
    slope = median(slopes) if slopes.size else 0.0
    return slope, median(y - slope * x)


def mann_kendall_z(y: np.ndarray) -> float:
    """Mann-Kendall rank statistic of a monotone trend, as a z-score (no tie correction).

    Rank-based, so a few wild points cannot fake a trend, and conservative on short windows.
    """
    n = y.size
    if n < 3:
        return 0.0
    i, j = _pairs(n)
    return rank_z(float(np.sign(y[j] - y[i]).sum()), n)


def rank_z(s: float, n: int) -> float:
    """The Mann-Kendall z-score of the sum `s` of pairwise signs over `n` points (n >= 3)."""
    var = n * (n - 1) * (2 * n + 5) / 18.0
    return (s - np.sign(s)) / np.sqrt(var) if s != 0 else 0.0


@dataclass
class WindowFit:
    """The robust line through a window of the smoothed curve, in scaled units (value / scale):
    what a trend is, before it is judged against a range."""

    change: float  # fitted change across the window
    stderr: float  # standard error of that change
    significant: bool  # slope and rank tests agree there is a trend
    start_step: int
    end_step: int

    def judged(self, value_range: float, settings: Settings, scale: float) -> Trend:
        """The trend, meaningful when the change is at least `trend_min_change` of
        `value_range` (scaled units); returned in value units."""
        change = self.change
        meaningful = abs(change) >= settings.trend_min_change * value_range and abs(change) > 0
        direction = FLAT
        if self.significant and meaningful:
            direction = FALLING if change < 0 else RISING
        return Trend(direction, change * scale, self.stderr * scale, self.start_step, self.end_step,
                     self.significant)


def value_range_of(values: np.ndarray) -> float:
    """Range (max - min) of a non-empty array, as np.ptp without its wrapper's overhead."""
    return float(values.max() - values.min())


def recent_first_bin(bin_steps: np.ndarray, settings: Settings) -> int:
    """First bin of the recent window: the last `recent_fraction` of the steps, widened to the
    last `min_window_bins` bins (or all of them) when that holds fewer. `bin_steps` sorted."""
    start = bin_steps[-1] - settings.recent_fraction * (bin_steps[-1] - bin_steps[0])
    first = int(bin_steps.searchsorted(start, side="left"))  # the first bin at `start` or later
    if bin_steps.size - first < settings.min_window_bins:
        first = bin_steps.size - min(settings.min_window_bins, bin_steps.size)
    return first


def fit_window(
    x: np.ndarray, y: np.ndarray, stats: CurveStats, settings: Settings, scale: float
) -> Optional[WindowFit]:
    """Robust trend fit of a window (bin steps `x`, scaled bin values `y`); None with fewer
    than three bins or no step span.

    A trend needs a significant robust slope (change beyond `trend_z` standard errors of the
    fit) that the rank test confirms; `WindowFit.judged` adds that it must be meaningful.
    """
    if y.size < 3:
        return None
    length = float(x[-1] - x[0])
    if length <= 0:
        return None
    offset = x - x[0]
    slope, intercept = theil_sen(offset, y)
    residuals = y - (intercept + slope * offset)
    scatter = _MAD_TO_SIGMA * median(np.abs(residuals - median(residuals)))
    return window_fit(x, slope * length, scatter, stats, settings, scale, lambda: mann_kendall_z(y))


def window_fit(
    x: np.ndarray,
    change: float,
    scatter: float,
    stats: CurveStats,
    settings: Settings,
    scale: float,
    rank: Callable[[], float],
) -> WindowFit:
    """The `fit_window` of a window with bin steps `x`, from its robust line's `change` and the
    scatter of its residuals (scaled units); `rank()` gives its Mann-Kendall z, asked only when
    the slope is significant."""
    # A short window's residuals can be quiet by chance: never claim less scatter than the
    # smoothed curve's own point-to-point noise, measured over all of it, nor than the
    # minibatch noise its bin medians carry in theory.
    scatter = max(scatter, stats.smooth_noise / scale, stats.leftover_noise / scale)
    stderr = scatter * np.sqrt(12.0 / x.size)
    significant = abs(change) > settings.trend_z * stderr and abs(rank()) >= settings.rank_z
    return WindowFit(change, stderr, significant, int(x[0]), int(x[-1]))


def find_spikes(
    steps: np.ndarray,
    values: np.ndarray,
    settings: Settings,
    scale: float,
    bin_steps: np.ndarray,
    bin_values: np.ndarray,
    layout: Optional[BinLayout] = None,
) -> List[Tuple[int, float]]:
    """Transient upward excursions that came back: (peak step, height above the local baseline).

    The baseline is the smoothed curve (bin medians, interpolated) for dense series, or a
    running median of `spike_window` points for short ones. An excursion is a run of points
    standing `spike_noise` robust noise units above it and at least `spike_min_height` of the
    curve's range, at most `spike_max_points` points or `spike_max_width` of them long (one bad batch, or a few bad
    epochs after an LR restart), with the curve back near the baseline on both sides (a rise
    that stays is a level shift, reported as a blow-up; the first and last points have only one
    side, so they never start or end a spike).
    """
    w = settings.spike_window
    if values.size < w + 2:
        return []
    dense = values.size > bin_values.size  # more points than bins: measured against the bins
    if dense:
        baseline = np.interp(steps, bin_steps, bin_values)  # both already in scaled units
    else:
        padded = np.pad(values, w // 2, mode="edge")
        baseline = np.median(np.lib.stride_tricks.sliding_window_view(padded, w), axis=1)
    residual = values - baseline
    value_range = value_range_of(baseline)
    if value_range <= 0 or residual.max() <= settings.spike_min_height * value_range:
        return []  # nothing reaches the height floor: skip measuring the noise
    sigma = _residual_noise(steps, residual, settings, layout)
    threshold = np.maximum(settings.spike_noise * sigma, settings.spike_min_height * value_range)
    tall = residual > threshold
    if dense:
        # Before the first bin's middle the smoothed curve is only extrapolated (flat): the
        # early drop of training stands above it without being a spike.
        tall &= steps >= bin_steps[0]
    if not tall.any():
        return []
    max_width = max(settings.spike_max_points, int(settings.spike_max_width * values.size))
    out = []
    for start, end in _true_runs(tall):
        if start == 0 or end == values.size or end - start > max_width:
            continue
        peak = start + int(np.argmax(residual[start:end]))
        out.append((int(steps[peak]), float(residual[peak] * scale)))
    return out


def _residual_noise(
    steps: np.ndarray, residual: np.ndarray, settings: Settings, layout: Optional[BinLayout] = None
) -> np.ndarray:
    """Robust noise of the residuals around the baseline, per point. Noise is often larger early
    in training, so dense curves measure it per bin; a curve with a point or two per bin has no
    local sample (a point would be measured against itself), so it uses one overall value. A
    bin's handful of points can look quiet by chance, so the local value never goes below the
    overall one: local noise may only raise the bar for a spike."""
    overall = _MAD_TO_SIGMA * median(np.abs(residual))
    if residual.size < 4 * settings.bins:
        return np.full(residual.size, overall)
    layout = layout or bin_layout(steps, settings.bins)
    local = np.maximum(_MAD_TO_SIGMA * grouped_medians(np.abs(residual), layout), overall)
    return np.repeat(local, layout.counts)


def _true_runs(mask: np.ndarray) -> List[Tuple[int, int]]:
    """[start, end) of each run of consecutive True values."""
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))
