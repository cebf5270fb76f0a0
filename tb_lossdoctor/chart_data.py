"""A curve's points as JSON for the tab's charts."""

from __future__ import annotations

import numpy as np

from tb_lossdoctor.report import json_safe
from tb_lossdoctor.series import Series


def chart_points(series: Series, max_points: int) -> dict:
    """{run, tag, steps, values}; non-finite values as "NaN"/"Infinity" strings (spec encoding).

    Longer series are thinned by an even stride, always keeping the last point and every
    non-finite point, so a NaN never disappears from the chart.
    """
    n = len(series)
    keep = np.zeros(n, dtype=bool)
    keep[:: max(1, -(-n // max(1, max_points)))] = True
    if n:
        keep[-1] = True
    keep |= ~np.isfinite(series.values)
    values = [json_safe(float(v)) for v in series.values[keep]]
    return {
        "run": series.run,
        "tag": series.tag,
        "steps": series.steps[keep].tolist(),
        "values": values,
    }
