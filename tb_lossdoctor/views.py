"""One curve as the rules see it: its stats, its orientation and what its level can mean."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple

import numpy as np

from tb_lossdoctor.grouping import Curve, MetricPair
from tb_lossdoctor.naming import describe_role
from tb_lossdoctor.settings import Settings
from tb_lossdoctor.trend import CurveStats, analyse
from tb_lossdoctor.trend_batch import analyse_many


@dataclass
class View:
    """One curve with its stats; values in the stats are oriented (lower is better)."""

    curve: Curve
    stats: CurveStats
    sign: float  # +1 for losses, -1 for accuracy-like metrics
    metric: str

    def value(self, oriented: float) -> float:
        return float(self.sign * oriented)

    @property
    def name(self) -> str:
        """"training loss", "validation box loss"; a leading loss word goes last, as English
        puts it (mmdetection's `loss_cls`: "training cls loss", not "training loss cls")."""
        words = self.metric.split("_")
        if len(words) > 1 and words[0] == "loss":
            words = words[1:] + words[:1]
        return f"{describe_role(self.curve.role)} {' '.join(words)}".strip()

    @property
    def tag(self) -> str:
        return self.curve.series.key


def orientation(pair: MetricPair) -> float:
    """+1 for a loss, -1 for an accuracy-like metric: curves are analysed so that lower is better."""
    return 1.0 if pair.is_loss else -1.0


def view_of(
    curve: Curve, pair: MetricPair, settings: Settings, known: Optional[Dict[int, CurveStats]] = None
) -> View:
    """The curve's view; its stats from `known` ({id(curve): stats}, see `analyse_curves`) when
    they are there, else analysed now."""
    sign = orientation(pair)
    stats = known.get(id(curve)) if known else None
    if stats is None:
        s = curve.series
        stats = analyse(s.steps, sign * s.values, settings)
    return View(curve, stats, sign, pair.metric)


def analyse_curves(curves: Iterable[Tuple[Curve, MetricPair]], settings: Settings) -> Dict[int, CurveStats]:
    """The stats `view_of` would compute for each (curve, its pair), computed together
    (`trend_batch.analyse_many`), by id(curve)."""
    curves = list(curves)
    oriented = [(c.series.steps, orientation(p) * c.series.values) for c, p in curves]
    return {id(c): stats for (c, _), stats in zip(curves, analyse_many(oriented, settings))}


def natural_floor(v: View) -> Optional[float]:
    """The metric's best possible value in oriented units, where it is known: 0 for a loss that
    is never negative, the top (1 or 100) for an accuracy in [0, 1] (or [0, 100])."""
    real = v.sign * v.stats.bin_values
    if real.size == 0 or np.min(real) < 0:
        return None
    if v.sign > 0:
        return 0.0
    top = 1.0 if np.max(real) <= 1.0 else (100.0 if np.max(real) <= 100.0 else None)
    return None if top is None else -top


def gap_closed(v: View) -> Optional[float]:
    """Share of the way from the start to the metric's natural floor, where the floor is known."""
    st = v.stats
    floor = natural_floor(v)
    if floor is None:
        return None
    total = st.start - floor
    return float((st.start - st.end) / total) if total > 0 else None
