"""Curves analysed together (`trend_batch.analyse_many`) get exactly the stats `trend.analyse`
gives each one alone: the same values to the last bit, the same types, the same lazy trends."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tb_lossdoctor import trend_batch
from tb_lossdoctor.engine import diagnose
from tb_lossdoctor.series import make_series
from tb_lossdoctor.settings import Settings
from tb_lossdoctor.trend import CurveStats, analyse

LAZY = ("smooth_noise", "swing", "leftover_noise", "chance_improvement", "value_range", "improvement",
        "has_recent", "recent", "overall", "since_best", "spikes")


def exact(value):
    """A value as something `==` compares bit for bit (and by type)."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (float, np.floating)):
        return (type(value).__name__, float(value).hex())
    if isinstance(value, (bool, np.bool_, int, np.integer, str, type(None))):
        return (type(value).__name__, value)
    if isinstance(value, (tuple, list)):
        return tuple(exact(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, exact(v)) for k, v in value.items()))
    if isinstance(value, Settings):
        return ("settings", value)
    if dataclasses.is_dataclass(value):
        return (type(value).__name__, exact(dataclasses.asdict(value)))
    raise TypeError(type(value))


def snapshot(stats: CurveStats) -> dict:
    """Every field and every lazy property of the stats, then the window fits they memoised."""
    out = {f.name: exact(getattr(stats, f.name)) for f in dataclasses.fields(stats) if f.name != "fits"}
    out.update({name: exact(getattr(stats, name)) for name in LAZY})
    for step in (stats.first_step, 0.5 * (stats.first_step + stats.final_step), stats.final_step):
        out[f"trend_from {step}"] = exact(stats.trend_from(step))
        out[f"range_from {step}"] = exact(stats.range_from(step))
    out["fits"] = exact(stats.fits)
    return out


def sweep_curves(steps: np.ndarray, rng: np.random.Generator) -> list:
    """Curves of every kind, all logged at `steps`."""
    n = steps.size
    t = np.linspace(0.0, 1.0, n)
    base = 2.0 * np.exp(-4.0 * t) + 0.3
    curves = [base + rng.normal(0, s, n) for s in (0.0, 0.01, 0.1, 0.5)]
    curves.append(np.full(n, 0.25))  # constant: no noise, no trend
    curves.append(np.zeros(n))  # zero: scale 1
    curves.append(np.round(base * 4) / 4)  # quantised: the mean-deviation fallback of the noise
    curves.append(-base)  # negative values
    curves.append(np.where(np.arange(n) % 7 == 3, -0.0, 0.0))  # signed zeros
    curves.append(1e30 * (base + rng.normal(0, 0.05, n)))  # huge
    curves.append(1e-30 * (base + rng.normal(0, 0.05, n)))  # tiny
    spiky = base + rng.normal(0, 0.01, n)
    spiky[n // 2] += 5.0
    curves.append(spiky)
    rising = base[::-1] + rng.normal(0, 0.02, n)  # gets worse: since_best, blow-up material
    curves.append(rising)
    blowup = base.copy()
    blowup[2 * n // 3 :] += 10.0
    curves.append(blowup)
    with_nan = base.copy()
    with_nan[n // 2] = np.nan  # recovers: analysed alone
    curves.append(with_nan)
    died = base.copy()
    died[n // 3 :] = np.inf  # dies: analysed alone
    curves.append(died)
    curves.append(np.full(n, np.nan))
    return curves


STEP_SEQUENCES = {
    "dense even": np.arange(200, dtype=np.int64),  # 5 points in each of 40 bins
    "dense uneven": np.unique(np.r_[np.arange(0, 50), np.arange(50, 2000, 17)]).astype(np.int64),
    "repeated steps": np.repeat(np.arange(60, dtype=np.int64), 2),
    "sparse": np.arange(0, 200, 10, dtype=np.int64),  # every point its own bin
    "short": np.array([0, 5, 9, 20], dtype=np.int64),
    "very dense": np.arange(0, 4000, 3, dtype=np.int64),
}


@pytest.mark.parametrize("name", sorted(STEP_SEQUENCES))
def test_batched_stats_equal_per_curve_stats(name, monkeypatch):
    settings = Settings()
    steps = STEP_SEQUENCES[name]
    curves = sweep_curves(steps, np.random.default_rng(len(name)))
    batched_rows = []
    analyse_rows = trend_batch.analyse_rows
    monkeypatch.setattr(trend_batch, "analyse_rows",
                        lambda s, v, st: batched_rows.append(v.shape[0]) or analyse_rows(s, v, st))
    # One-point and two-point curves and a curve of its own steps come along in the same call.
    extra = [(np.array([3], dtype=np.int64), np.array([1.5])),
             (np.array([3, 8], dtype=np.int64), np.array([1.5, 1.0])),
             (steps[:-1], curves[1][:-1])]
    batch = [(steps, v) for v in curves] + extra
    together = trend_batch.analyse_many(batch, settings)
    alone = [analyse(s, v, settings) for s, v in batch]
    assert sum(batched_rows) == len(curves) - 3  # every finite curve on `steps` went through the matrix
    for i, (a, b) in enumerate(zip(together, alone)):
        assert snapshot(a) == snapshot(b), f"curve {i}"


def test_row_medians_equal_median_per_row():
    from tb_lossdoctor.trend import median

    rng = np.random.default_rng(3)
    for width in (1, 2, 3, 4, 7, 38):
        a = rng.normal(size=(9, width))
        a[0] = 0.0
        a[1, ::2] = -0.0
        assert [float(m).hex() for m in trend_batch.row_medians(a)] == [median(row).hex() for row in a]


def test_diagnose_batched_equals_group_by_group(monkeypatch):
    """The engine's report is the same whether curves are analysed together or alone."""
    rng = np.random.default_rng(5)
    series = []
    for r in range(30):
        steps = np.arange(200)
        curves = sweep_curves(steps, rng)
        train = curves[r % len(curves)]
        val = sweep_curves(steps[::10], rng)[(r * 7) % len(curves)]
        series.append(make_series(f"run{r:02d}", "train_loss", steps, train))
        series.append(make_series(f"run{r:02d}", "val_loss", steps[::10], val))
    together = diagnose(series)
    monkeypatch.setattr(trend_batch, "MIN_ROWS", 10**9)  # nothing is analysed together
    alone = diagnose(series)
    for report in (together, alone):
        report.pop("generated_at")
    assert together == alone


def test_diagnose_each_equals_one_diagnose_per_item(realworld_dir, monkeypatch):
    """The plugin diagnoses each run group as its own report, a chunk per call
    (`engine.diagnose_each`, curves of the whole chunk analysed together): each report must be
    what `diagnose` gives for that item alone. Real logs, one item per case, plus a sweep cut
    into one item per run (curves logged at the same steps across items: the batched path)."""
    from tb_lossdoctor.engine import diagnose_each
    from tb_lossdoctor.readers.logdir import read_logdir

    items = [read_logdir(str(realworld_dir / case), reader="python")[:2]
             for case in ("keras_hw07_run1", "pl_irdsi_v3", "tf_hw06_L2", "pl_braintumor_nan")]
    rng = np.random.default_rng(11)
    steps = np.arange(200)
    for r in range(12):
        curves = sweep_curves(steps, rng)
        items.append(([make_series(f"run{r:02d}", "train_loss", steps, curves[r % len(curves)]),
                       make_series(f"run{r:02d}", "val_loss", steps[::10], curves[(r + 3) % len(curves)][::10])],
                      [{"run": f"run{r:02d}", "tag": "x", "reason": "a reader's problem, carried"}]))
    batched_rows = []
    analyse_rows = trend_batch.analyse_rows
    monkeypatch.setattr(trend_batch, "analyse_rows",
                        lambda s, v, st: batched_rows.append(v.shape[0]) or analyse_rows(s, v, st))
    each = diagnose_each(items)
    assert sum(batched_rows) >= 12  # the sweep's curves of several items went together
    monkeypatch.setattr(trend_batch, "MIN_ROWS", 10**9)  # now nothing is analysed together
    alone = [diagnose(series, problems=problems) for series, problems in items]
    for report in each + alone:
        report.pop("generated_at")
    assert each == alone
