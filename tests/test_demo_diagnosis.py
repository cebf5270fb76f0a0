"""The demo runs (real training, demo/generate.py): each gets the code it was built to show.

demo/expected.json states the design intent of each run (what its hyper-parameters were chosen
to produce); it was written with the generator, not from the engine's output.
"""

import json
from pathlib import Path

import pytest

from tb_lossdoctor.engine import diagnose
from tb_lossdoctor.readers.logdir import read_logdir
EXPECTED = json.loads((Path(__file__).resolve().parents[1] / "demo" / "expected.json").read_text())


@pytest.fixture(scope="module", params=["server", "python"])
def demo_report(request, demo_logdir):
    series, problems, info = read_logdir(str(demo_logdir), reader=request.param)
    assert info["reader"] == request.param
    return {run["run"]: run for run in diagnose(series, problems=problems)["runs"]}


def test_every_demo_run_is_diagnosed(demo_report):
    assert set(demo_report) == set(EXPECTED)


@pytest.mark.parametrize("run", sorted(EXPECTED))
def test_demo_run_gets_its_code(demo_report, run):
    found = {f["code"] for f in demo_report[run]["findings"]}
    assert set(EXPECTED[run]["expected"]) <= found, (run, found)
    severities = {f["severity"] for f in demo_report[run]["findings"]}
    assert not severities & set(EXPECTED[run]["forbidden_severities"]), (run, found)


def test_every_spec_code_but_spikes_appears_in_the_demo(demo_report):
    found = {f["code"] for run in demo_report.values() for f in run["findings"]}
    spec = {"nan", "blowup", "diverging", "not_learning", "oscillation", "overfitting",
            "data_problem", "plateau", "slow_convergence", "still_learning", "converged", "too_early"}
    assert spec <= found
