"""Property-based: the engine never raises and always returns a valid report."""

import json

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from tb_lossdoctor.engine import diagnose
from tb_lossdoctor.report import SEVERITY_RANK, dumps
from tb_lossdoctor.codes import SEVERITY
from tb_lossdoctor.series import make_series

FINDING_KEYS = {"code", "severity", "title", "summary", "metric", "tags", "step", "step_range",
                "evidence", "advice", "confidence"}

values_strategy = st.lists(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True, width=64),
        st.floats(min_value=-10, max_value=10),
        st.sampled_from([0.0, 1e38, -1e38, 1e-38, float("nan")]),
    ),
    min_size=0,
    max_size=300,
)
steps_strategy = st.lists(st.integers(min_value=-(2**40), max_value=2**40), min_size=0, max_size=300)
tags = st.sampled_from(["loss", "val_loss", "epoch_loss", "accuracy", "val_accuracy", "lr", "x"])
runs = st.sampled_from(["a", "a/train", "a/validation", "<b>", "c/d"])


def check_report(report):
    text = dumps(report)  # raises on NaN: the report must be strict JSON
    assert json.loads(text)["version"] == 1
    order = [-SEVERITY_RANK[r["status"]] for r in report["runs"]]
    assert order == sorted(order)
    for run in report["runs"]:
        for finding in run["findings"]:
            assert set(finding) == FINDING_KEYS
            assert SEVERITY[finding["code"]] == finding["severity"]
            assert 0 <= finding["confidence"] <= 1
            assert finding["title"] and finding["summary"] and finding["advice"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(runs, tags, steps_strategy, values_strategy), max_size=5))
def test_engine_never_raises_on_arbitrary_series(items):
    series = [make_series(r, t, steps, values[: len(steps)]) for r, t, steps, values in items]
    check_report(diagnose(series))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=3000),
    st.floats(min_value=-1e6, max_value=1e6),
    st.floats(min_value=1e-6, max_value=1e6),
    st.integers(min_value=0, max_value=2**31),
)
def test_engine_on_noisy_curves_of_any_length_scale_and_offset(n, offset, scale, seed):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n)
    values = offset + scale * (np.exp(-5 * t) + 0.1 * rng.standard_normal(n))
    report = diagnose([make_series("r", "loss", np.arange(n), values),
                       make_series("r", "val_loss", np.arange(0, n, 10), values[::10])])
    check_report(report)
    assert report["runs"][0]["run"] == "r"


def test_points_rewritten_by_a_restart_are_said_in_the_report():
    """A run resumed from a checkpoint writes steps 50..99 again: the later writes win, and the
    report's series entry says so (nothing the reader changed goes unmentioned)."""
    import numpy as np

    from tb_lossdoctor.engine import diagnose
    from tb_lossdoctor.series import make_series

    steps = np.r_[np.arange(100), np.arange(50, 200)]
    values = 0.2 + 2 * np.exp(-steps / 40.0)
    (run,) = diagnose([make_series("r", "loss", steps, values)])["runs"]
    (entry,) = [s for s in run["series"] if s["tag"] == "loss"]
    assert entry["points"] == 200
    assert any("restart" in note for note in entry["notes"])
