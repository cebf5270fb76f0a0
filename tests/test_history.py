"""diagnose_history on constructed training histories (no framework): the engine's report for a
dict of per-epoch lists, whatever the key convention, and the helpers the callbacks read."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import tb_lossdoctor
from tb_lossdoctor.callbacks.monitor import HistoryMonitor
from tb_lossdoctor.history import (
    best_step,
    check_codes,
    diagnose_history,
    events,
    find_finding,
    run_entry,
    verdict,
    verdict_line,
    verdict_markdown,
)
from tb_lossdoctor.report import dumps

EPOCHS = np.arange(40)
RNG = np.random.default_rng(0)
TRAIN = 0.1 + 2.0 * np.exp(-EPOCHS / 6) * (1 + 0.01 * RNG.standard_normal(EPOCHS.size))
# Validation bottoms out near epoch 14, then climbs back: textbook overfitting.
VAL_OVERFIT = 0.6 + 1.6 * np.exp(-EPOCHS / 5) + 0.004 * np.maximum(EPOCHS - 12, 0) ** 1.5
VAL_HEALTHY = TRAIN + 0.05


def test_overfitting_history_names_the_argmin_epoch():
    report = diagnose_history({"loss": list(TRAIN), "val_loss": list(VAL_OVERFIT)})
    assert verdict(report) == "overfitting"
    assert best_step(report) == int(np.argmin(VAL_OVERFIT))
    assert find_finding(report, ["overfitting"])["evidence"]["best_val_step"] == int(np.argmin(VAL_OVERFIT))
    assert events(report) == []


def test_explicit_steps_are_the_finding_steps():
    steps = [100 * (i + 1) for i in EPOCHS]
    report = diagnose_history({"loss": TRAIN, "val_loss": VAL_OVERFIT}, steps=steps)
    assert best_step(report) == steps[int(np.argmin(VAL_OVERFIT))]


def test_nan_history_is_a_nan_event_and_no_verdict():
    train = list(TRAIN[:15]) + [float("nan")] * 3
    report = diagnose_history({"loss": train, "val_loss": list(VAL_HEALTHY[:18])})
    assert verdict(report) is None
    nan = find_finding(report, ("nan",))
    assert nan is not None and nan["step"] == 15
    assert [f["code"] for f in events(report)] == ["nan"]
    assert verdict_line(report) == "died: nan (error)"
    json.loads(dumps(report))  # still strict JSON


def test_infinite_validation_loss_is_a_nan_event_beside_the_verdict():
    val = list(VAL_HEALTHY[:12])
    val[6] = float("inf")
    report = diagnose_history({"loss": TRAIN[:12], "val_loss": val})
    assert find_finding(report, ("nan",))["step"] == 6
    assert "nan" in verdict_line(report)


@pytest.mark.parametrize(
    "keys",
    [
        ("loss", "val_loss", "accuracy", "val_accuracy"),  # Keras
        ("train_loss", "val_loss", "train_acc", "val_acc"),  # PyTorch habits
        ("train_loss_epoch", "val_loss", "train_acc_epoch", "val_acc"),  # Lightning
        ("Loss/train", "Loss/val", "Accuracy/train", "Accuracy/val"),  # add_scalar tags
    ],
)
def test_key_conventions_give_the_same_diagnosis(keys):
    accuracy = 1 - TRAIN / 3
    history = dict(zip(keys, (TRAIN, VAL_OVERFIT, accuracy, accuracy - 0.1)))
    report = diagnose_history(history)
    roles = {(s["tag"], s["role"], s["metric"]) for s in run_entry(report)["series"]}
    assert (keys[0], "train", "loss") in roles and (keys[1], "val", "loss") in roles
    assert verdict(report) == "overfitting"
    assert best_step(report) == int(np.argmin(VAL_OVERFIT))


def test_one_run_group_in_the_engine_report_shape():
    report = diagnose_history({"loss": TRAIN, "val_loss": VAL_HEALTHY}, run="resnet")
    assert report["version"] == 1 and [r["run"] for r in report["runs"]] == ["resnet"]
    entry = run_entry(report)
    assert entry["status"] == "ok" and entry["verdict"] in ("converged", "still_learning")
    assert best_step(report) is None
    assert verdict(report) in verdict_markdown(report)


def test_values_of_any_numeric_type_none_skipped_and_non_numbers_ignored():
    history = {
        "loss": [np.float32(v) for v in TRAIN],
        "val_loss": [None if i % 2 else float(v) for i, v in enumerate(VAL_OVERFIT)],
        "run_name": "resnet",
        "notes": ["a", "b"],
        7: [1.0, 2.0],
    }
    entry = run_entry(diagnose_history(history))
    points = {s["tag"]: s["points"] for s in entry["series"]}
    assert points == {"loss": 40, "val_loss": 20}
    assert "nan" not in {f["code"] for f in entry["findings"]}


def test_per_key_steps_for_a_sparser_validation_curve():
    val_steps = list(range(1, 40, 2))
    report = diagnose_history(
        {"loss": TRAIN, "val_loss": VAL_OVERFIT[val_steps]}, steps={"val_loss": val_steps}
    )
    assert best_step(report) == val_steps[int(np.argmin(VAL_OVERFIT[val_steps]))]


def test_history_objects_and_bad_inputs():
    class History:  # anything with a `.history` dict, as keras.callbacks.History
        history = {"loss": list(TRAIN), "val_loss": list(VAL_OVERFIT)}

    assert verdict(diagnose_history(History())) == "overfitting"
    with pytest.raises(TypeError):
        diagnose_history([1.0, 2.0])
    with pytest.raises(ValueError, match="3 steps"):
        diagnose_history({"loss": [1.0, 0.5]}, steps=[0, 1, 2])
    empty = diagnose_history({"epoch": [0, 1, 2]})
    assert run_entry(empty) is None and verdict(empty) is None
    assert "no recognised metric" in verdict_line(empty)


def test_stop_codes_are_checked():
    assert check_codes("nan") == ("nan",)
    assert check_codes(["nan", "overfitting"]) == ("nan", "overfitting")
    with pytest.raises(ValueError, match="nann"):
        check_codes(("nann",))


def test_monitor_records_steps_and_finds_the_stop_finding():
    monitor = HistoryMonitor(("overfitting",))
    for epoch, (t, v) in enumerate(zip(TRAIN, VAL_OVERFIT)):
        monitor.record(epoch, {"loss": t, "val_loss": v, "lr": 1e-3, "name": "x"})
        monitor.judge()
        if monitor.stop_finding() is not None:
            break
    assert monitor.stop_finding()["step"] == int(np.argmin(VAL_OVERFIT[: epoch + 1]))
    assert epoch < EPOCHS[-1], "the stop came while training went on"
    assert set(monitor.values) == {"loss", "val_loss", "lr"}


def test_package_import_pulls_in_no_framework():
    code = (
        "import sys, tb_lossdoctor, tb_lossdoctor.callbacks;"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'torch', 'lightning', 'pytorch_lightning', 'numpy')];"
        "print(heavy);"
        "r = tb_lossdoctor.diagnose_history({'loss': [3, 2, 1.5, 1.2, 1.1, 1.05, 1.0, 0.99, 0.98]});"
        "print(r['runs'][0]['verdict'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "[]"
    assert lines[1] in ("converged", "still_learning")
    assert tb_lossdoctor.diagnose_history is diagnose_history
