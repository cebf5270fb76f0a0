"""The trend classifier on constructed series: invariances, noise, sampling, edge cases."""

import numpy as np
import pytest

from tb_lossdoctor.series import make_series
from tb_lossdoctor.settings import Settings
from tb_lossdoctor.trend import FALLING, FLAT, RISING, analyse, bin_medians, mann_kendall_z

SETTINGS = Settings()


def decaying(n=400, noise=0.05, seed=0, tau=0.15, floor=0.2):
    """A loss that falls fast and flattens (exponential decay), with minibatch-like noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n)
    return np.arange(n) * 10, floor + 2.0 * np.exp(-t / tau) + noise * rng.standard_normal(n)


def linear(n=400, noise=0.02, seed=1, slope=-1.0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n)
    return np.arange(n), 3.0 + slope * t + noise * rng.standard_normal(n)


def directions(steps, values):
    st = analyse(np.asarray(steps), np.asarray(values, dtype=float), SETTINGS)
    return st.recent.direction, st.overall.direction


def test_converging_curve_is_flat_recently_and_falling_overall():
    assert directions(*decaying()) == (FLAT, FALLING)


def test_steady_fall_and_rise():
    assert directions(*linear())[0] == FALLING
    assert directions(*linear(slope=+1.0))[0] == RISING


@pytest.mark.parametrize("scale,offset", [(1000.0, 0.0), (1e-3, 0.0), (1.0, 500.0), (7.0, -3.0)])
def test_scale_and_offset_change_no_verdict(scale, offset):
    for steps, values in (decaying(), linear(), linear(slope=1.0)):
        assert directions(steps, values * scale + offset) == directions(steps, values)


def test_step_units_change_no_verdict():
    for steps, values in (decaying(), linear()):
        assert directions(steps * 37 + 1000, values) == directions(steps, values)


def test_sampling_density_changes_no_verdict():
    steps, values = decaying(n=100_000, noise=0.3, seed=3)
    dense = directions(steps, values)
    rng = np.random.default_rng(4)
    keep = np.sort(rng.choice(steps.size, 1000, replace=False))
    assert directions(steps[keep], values[keep]) == dense
    assert directions(steps[::100], values[::100]) == dense


def test_uneven_spacing():
    rng = np.random.default_rng(5)
    steps = np.cumsum(rng.integers(1, 50, 300))
    t = (steps - steps[0]) / (steps[-1] - steps[0])
    assert directions(steps, 1.0 - 0.8 * t)[0] == FALLING


def test_heavy_minibatch_noise_on_flat_curve_is_flat():
    rng = np.random.default_rng(6)
    values = 1.0 + 0.5 * rng.standard_normal(5000)
    assert directions(np.arange(5000), values)[0] == FLAT


def test_bin_medians_are_medians_of_contiguous_bins():
    steps = np.arange(100)
    values = np.arange(100, dtype=float)[::-1]
    bin_steps, medians, per_bin = bin_medians(steps, values, 10)
    assert per_bin == 10
    np.testing.assert_allclose(medians, [np.median(values[i * 10:(i + 1) * 10]) for i in range(10)])
    assert list(bin_steps) == [i * 10 + 4 for i in range(10)]


def test_mann_kendall_sign_and_strength():
    assert mann_kendall_z(np.arange(20.0)) > 5
    assert mann_kendall_z(-np.arange(20.0)) < -5
    assert abs(mann_kendall_z(np.ones(20))) == 0


@pytest.mark.parametrize(
    "values",
    [[1.0], [np.nan], [np.nan] * 10, [5.0] * 50, [-3.0, -3.5, -4.0, -4.2, -4.3], [1e38] * 20,
     [1e-38, 2e-38, 1e-38] * 10, [np.inf, 1.0, 2.0]],
)
def test_edge_cases_do_not_raise(values):
    values = np.asarray(values, dtype=float)
    st = analyse(np.arange(values.size), values, SETTINGS)
    assert st.points == values.size


def test_first_nonfinite_point_is_located():
    values = np.r_[np.linspace(2, 1, 50), [np.nan] * 10]
    st = analyse(np.arange(60) * 5, values, SETTINGS)
    assert st.first_nonfinite_step == 250
    assert st.last_finite_step == 245
    assert not st.recovered_after_nonfinite


def test_make_series_restart_latest_write_wins():
    # Steps 0..9 written, then the run restarted at step 5 and rewrote 5..12.
    steps = list(range(10)) + list(range(5, 13))
    values = [1.0] * 10 + [2.0] * 8
    s = make_series("r", "loss", steps, values)
    assert list(s.steps) == list(range(13))
    assert list(s.values) == [1.0] * 5 + [2.0] * 8


def test_make_series_keeps_last_of_several_values_per_step():
    s = make_series("r", "loss", [0, 0, 0, 1, 1, 1], [1.0, 5.0, 3.0, 2.0, 2.0, 8.0])
    assert list(s.steps) == [0, 1]
    assert list(s.values) == [3.0, 8.0]


def test_median_equals_numpy_on_small_arrays():
    from tb_lossdoctor.trend import median

    rng = np.random.default_rng(13)
    for n in range(1, 51):
        a = rng.standard_normal(n)
        assert median(a) == np.median(a)
        assert median(np.round(a)) == np.median(np.round(a))  # ties


def test_bin_layout_medians_match_numpy_even_and_uneven():
    from tb_lossdoctor.trend import bin_layout, grouped_medians

    rng = np.random.default_rng(7)
    for steps in (np.arange(200, dtype=np.int64), np.cumsum(rng.integers(1, 9, 300)).astype(np.int64)):
        values = rng.standard_normal(steps.size)
        layout = bin_layout(steps, 40)
        assert bin_layout(steps, 40) is layout  # remembered for the same steps
        assert not layout.starts.flags.writeable
        bounds = list(layout.starts) + [steps.size]
        expected = [np.median(values[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        np.testing.assert_array_equal(grouped_medians(values, layout), expected)
        np.testing.assert_array_equal(steps[layout.middles], [steps[(a + b - 1) // 2] for a, b in zip(bounds[:-1], bounds[1:])])
    # Equal bytes under another dtype are other steps: never the same layout.
    wide = np.arange(10, dtype=np.int64) * 3
    assert bin_layout(wide.astype(np.int32), 4) is not bin_layout(wide, 4)


def test_memoised_window_trends_equal_fresh_ones():
    steps, values = decaying(n=300, noise=0.05, seed=3)
    stats = analyse(steps, values, SETTINGS)
    first = stats.recent.start_step
    again = stats.trend_from(first)  # the same first bin as the recent window: a memoised fit
    fresh = analyse(steps, values, SETTINGS).trend_from(first)
    assert again == fresh
    assert (again.change, again.stderr, again.significant) == (stats.recent.change, stats.recent.stderr,
                                                               stats.recent.significant)
    assert analyse(steps, values, SETTINGS).overall == stats.overall


def test_has_recent_says_whether_recent_is_a_trend():
    for n in (0, 1, 2, 3, 4, 7, 20, 200):
        steps, values = decaying(n=n, seed=n)
        stats = analyse(steps, values, SETTINGS)
        assert stats.has_recent == (stats.recent is not None)
    stats = analyse(np.array([5, 6, 7, 8]), np.array([1.0, np.nan, np.nan, np.nan]), SETTINGS)
    assert stats.has_recent == (stats.recent is not None)
