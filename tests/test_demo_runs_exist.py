"""The committed demo logs match demo/expected.json and stay small."""

import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "demo")
LOGS = os.path.join(DEMO, "logs")
CODES = {
    "nan", "blowup", "diverging", "not_learning", "oscillation", "overfitting", "data_problem",
    "plateau", "slow_convergence", "spikes", "still_learning", "converged", "too_early",
}
SEVERITIES = {"info", "warning", "error"}


def _expected():
    with open(os.path.join(DEMO, "expected.json"), encoding="utf-8") as f:
        return json.load(f)


def _event_files(path):
    return [
        os.path.join(d, name)
        for d, _, names in os.walk(path)
        for name in names
        if "tfevents" in name
    ]


def test_manifest_is_well_formed():
    expected = _expected()
    assert expected, "demo/expected.json lists no runs"
    for run, spec in expected.items():
        assert set(spec) >= {"expected", "forbidden_severities"}, run
        assert spec["expected"] and set(spec["expected"]) <= CODES, run
        assert set(spec["forbidden_severities"]) <= SEVERITIES, run


@pytest.mark.parametrize("run", sorted(_expected()))
def test_run_has_event_files(run):
    path = os.path.join(LOGS, run)
    assert os.path.isdir(path), f"missing demo run folder {path}"
    files = _event_files(path)
    assert files, f"no event file under {path}"
    assert all(os.path.getsize(f) > 0 for f in files)


def test_logs_are_small():
    total = sum(
        os.path.getsize(os.path.join(d, name)) for d, _, names in os.walk(LOGS) for name in names
    )
    assert total < 10 * 1024 * 1024, f"demo/logs holds {total / 1e6:.1f} MB"
