"""Real logs nobody wrote for this project (../shared/realworld, read in place).

The expected verdicts were decided by reading each folder's curves (values printed per step),
not by running the engine: see the comment on each case.
"""

import pytest

from tb_lossdoctor.engine import diagnose
from tb_lossdoctor.readers.logdir import read_logdir

# folder -> (acceptable codes, of which at least one must be reported; statuses allowed)
CASES = {
    # train 34.1 -> 29.0 in three epochs then flat; validation noisy around 30 and flat; accuracy 0.
    "keras_hw07_run1": ({"plateau"}, {"warning"}),
    # train loss 11.8 -> 0.18 while validation rises from 11.6 (its best, epoch 0) to 45.
    "keras_recommend": ({"overfitting"}, {"warning"}),
    # Lightning: per-step train loss becomes NaN at step 742,749 and stays NaN.
    "pl_cowsip_sigma30_starved": ({"nan"}, {"error"}),
    # train loss 2.04 -> 1.81 slowly; validation ~2.0 flat from early on, accuracy ~30%.
    "pl_irdsi_v3": ({"overfitting", "plateau"}, {"warning"}),
    # LSTM: train 2.06 -> 0.24, validation 0.36 -> 0.25, both flat at the end.
    "pl_lstm": ({"converged"}, {"ok"}),
    # MNIST: five training points in all.
    "pl_mnist_v0": ({"too_early", "converged"}, {"ok"}),
    # Adam: validation best 0.059 at epoch 6, ~0.10 by the end; train keeps falling to 0.003.
    "tf_hw04_Adam": ({"overfitting"}, {"warning"}),
    # RMSprop: train loss ~0.05 until epoch 46, jumps to 0.4-0.9 and stays there.
    "tf_hw04_RMSprop": ({"blowup"}, {"error"}),
    # 15 epochs, both losses still going down at the end.
    "tf_hw06_Aug": ({"still_learning"}, {"ok"}),
    # loss stays at ln(10) = 2.303 and accuracy at chance for all 15 epochs.
    "tf_lena_Adam-Depth4-Filter48": ({"not_learning"}, {"error"}),
    # YOLOv8, 25 epochs: all losses still falling, mAP still rising.
    "yolov8": ({"still_learning"}, {"ok"}),
}


@pytest.fixture(scope="module")
def reports(realworld_dir):
    out = {}
    for folder in sorted(p.name for p in realworld_dir.iterdir() if p.is_dir()):
        series, problems, _ = read_logdir(str(realworld_dir / folder), reader="python")
        out[folder] = diagnose(series, problems=problems)
    return out


def test_every_folder_is_covered(reports):
    assert set(reports) == set(CASES)


@pytest.mark.parametrize("folder", sorted(CASES))
def test_verdict(reports, folder):
    codes, statuses = CASES[folder]
    (run,) = reports[folder]["runs"]  # each folder is one training run
    found = {f["code"] for f in run["findings"]}
    assert found & codes, (folder, found)
    assert run["status"] in statuses, (folder, run["status"], found)


def test_keras_folders_pair_epoch_tags(reports):
    (run,) = reports["keras_hw07_run1"]["runs"]
    loss = [s for s in run["series"] if s["metric"] == "loss"]
    assert {(s["run"], s["tag"], s["role"]) for s in loss} == {
        ("train", "epoch_loss", "train"), ("validation", "epoch_loss", "val")}


def test_lightning_epoch_level_train_loss_pairs_with_val(reports):
    (run,) = reports["pl_irdsi_v3"]["runs"]
    loss = {s["role"]: s["tag"] for s in run["series"] if s["metric"] == "loss"}
    assert loss == {"train": "train_loss_epoch", "val": "val_loss"}


def first_nonfinite_step(path, tag):
    """Independent check, straight from TensorBoard's event accumulator."""
    import math

    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    return min(e.step for e in acc.Scalars(tag) if not math.isfinite(e.value))


def test_nan_located_at_first_nonfinite_step(reports, realworld_dir):
    (run,) = reports["pl_cowsip_sigma30_starved"]["runs"]
    nan = next(f for f in run["findings"] if f["code"] == "nan")
    assert nan["step"] == first_nonfinite_step(realworld_dir / "pl_cowsip_sigma30_starved", "train_loss")
    assert nan["evidence"]["last_finite_step"] < nan["step"]


def test_overfitting_names_the_best_validation_step(reports, realworld_dir):
    """The step to restore is the epoch with the lowest validation loss in the raw log."""
    from tensorboard.backend.event_processing import event_accumulator

    (run,) = reports["tf_hw04_Adam"]["runs"]
    finding = next(f for f in run["findings"] if f["code"] == "overfitting")
    acc = event_accumulator.EventAccumulator(str(realworld_dir / "tf_hw04_Adam" / "test"),
                                             size_guidance={"tensors": 0})
    acc.Reload()
    import tensorflow as tf  # the TF2 writer stored tensors; decode them the reference way

    val = {e.step: float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors("v_loss")}
    assert finding["step"] == min(val, key=val.get)
    assert any("restore" in a or "stop there" in a for a in finding["advice"])


def test_several_values_per_step_keep_one_point_per_step(reports):
    (run,) = reports["tf_lena_Adam-Depth4-Filter48"]["runs"]
    train = next(s for s in run["series"] if s["role"] == "train" and s["metric"] == "loss")
    assert train["points"] == 15  # 23,445 per-batch writes at 15 epoch steps


def test_spikes_before_the_nan_are_real_spikes(reports, realworld_dir):
    """pl_cowsip's per-step loss jumps from ~2 to 40-100 for single steps and comes back; the
    reported spike steps must be such points in the raw data (checked without the engine)."""
    import numpy as np

    from tensorboard.backend.event_processing import event_accumulator

    (run,) = reports["pl_cowsip_sigma30_starved"]["runs"]
    spikes = next(f for f in run["findings"] if f["code"] == "spikes")
    acc = event_accumulator.EventAccumulator(
        str(realworld_dir / "pl_cowsip_sigma30_starved"), size_guidance={"scalars": 0})
    acc.Reload()
    by_step = {e.step: e.value for e in acc.Scalars("train_loss")}
    steps = sorted(by_step)
    for step in spikes["evidence"]["spike_steps"][:10]:
        i = steps.index(step)
        around = [by_step[s] for s in steps[max(0, i - 5): i + 6] if s != step]
        assert by_step[step] > 5 * float(np.median(around)), (step, by_step[step], around)
    assert spikes["step"] < next(f for f in run["findings"] if f["code"] == "nan")["step"]
