"""Training loss logged at the global batch step, validation loss at the epoch number.

A custom training loop (real TensorFlow training, `tf.summary.scalar`) logs the same run twice:
once with validation at the epoch number (the common slip), once with validation at the global
step. Wall time says how the two axes map, so both logs must get the same verdict, and the
moved curve says what was done to it.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

sys.path.insert(0, str(Path(__file__).parent))
from training_tasks import spirals_task, teacher_task  # noqa: E402

from tb_lossdoctor.engine import diagnose  # noqa: E402
from tb_lossdoctor.readers.logdir import read_logdir  # noqa: E402

def train_and_log(logdir: Path, task: str, n_train: int, batch: int, epochs: int, seed: int) -> None:
    """Train a small MLP; log to `epoch_units/` (validation at the epoch) and `step_units/`
    (validation at the global step) the very same values."""
    tf.keras.utils.set_random_seed(seed)
    if task == "spirals":
        (x, y), (xv, yv) = spirals_task(n_train, 1000, seed, label_noise=0.1)
    else:  # 10 classes from 20 features: a few hundred examples are memorised within epochs
        (x, y), (xv, yv) = teacher_task(n_train, 1000)
        x, xv = np.log1p(np.abs(x)) * np.sign(x), np.log1p(np.abs(xv)) * np.sign(xv)
    model = tf.keras.Sequential([tf.keras.Input((x.shape[1],)), tf.keras.layers.Dense(128, activation="relu"),
                                 tf.keras.layers.Dense(128, activation="relu"), tf.keras.layers.Dense(int(y.max()) + 1)])
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = tf.keras.optimizers.Adam(3e-3)
    writers = {name: tf.summary.create_file_writer(str(logdir / name)) for name in ("epoch_units", "step_units")}

    @tf.function
    def train_step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    step = 0
    for epoch in range(epochs):
        order = np.random.RandomState(seed + epoch).permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            loss = float(train_step(x[idx], y[idx]))
            for writer in writers.values():
                with writer.as_default():
                    tf.summary.scalar("train/loss", loss, step=step)
            step += 1
        val_loss = float(loss_fn(yv, model(xv, training=False)))
        with writers["epoch_units"].as_default():
            tf.summary.scalar("val/loss", val_loss, step=epoch)
        with writers["step_units"].as_default():
            tf.summary.scalar("val/loss", val_loss, step=step - 1)
    for writer in writers.values():
        writer.close()


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("step_units")
    # Enough data: no overfitting. 47 batches per epoch.
    train_and_log(root / "learns", "spirals", n_train=3000, batch=64, epochs=24, seed=1)
    # 300 examples of a 10-class task: memorised within a few epochs, validation turns up.
    train_and_log(root / "memorises", "teacher", n_train=300, batch=10, epochs=30, seed=2)
    return root


@pytest.mark.parametrize("reader", ["server", "python"])
@pytest.mark.parametrize("case", ["learns", "memorises"])
def test_validation_at_the_epoch_gets_the_verdict_of_validation_at_the_step(logs, reader, case):
    series, problems, _ = read_logdir(str(logs / case), reader=reader)
    runs = {r["run"]: r for r in diagnose(series, problems=problems)["runs"]}
    epochs, steps = runs["epoch_units"], runs["step_units"]
    assert epochs["verdict"] == steps["verdict"], (epochs["findings"], steps["findings"])
    expected = {"learns": {"converged", "still_learning"}, "memorises": {"overfitting"}}[case]
    assert steps["verdict"] in expected, steps["findings"]
    # The moved curve says so; the other log's curves needed no move.
    (moved,) = [s for s in epochs["series"] if s.get("notes")]
    assert moved["tag"] == "val/loss" and "wall time" in moved["notes"][-1]
    assert not [s for s in steps["series"] if s.get("notes")]
    # The verdict is located in training steps, as if validation had been logged at the global
    # step (within one epoch's batches: an evaluation's wall time falls just after its epoch).
    (found,) = [f for f in epochs["findings"] if f["code"] == epochs["verdict"]]
    (same,) = [f for f in steps["findings"] if f["code"] == steps["verdict"]]
    batches_per_epoch = {"learns": 47, "memorises": 30}[case]
    assert abs(found["step"] - same["step"]) <= batches_per_epoch, (found["step"], same["step"])
    assert np.abs(np.subtract(found["step_range"], same["step_range"])).max() <= batches_per_epoch


def test_the_cli_text_says_which_curve_was_moved(logs, capsys):
    from tb_lossdoctor.cli import main

    main([str(logs / "memorises"), "--format", "text"])
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.strip().startswith("note: epoch_units:val/loss")]
    assert "coarser unit" in line and "wall time" in line


def test_tensorboard_serves_the_moved_curve_on_the_axis_it_was_judged_on(logs):
    """Through a real TensorBoard: the report names the axis of the moved curve, and the
    `series` route draws that curve on it (without `axis_*` it gives the curve as logged)."""
    import urllib.parse

    from tensorboard_process import get_json, running_tensorboard

    args = ["--samples_per_plugin", "scalars=0", "--load_fast", "false"]
    with running_tensorboard(logs / "memorises", args, lambda r: len(r["runs"]) == 2) as (base, _, report):
        run = next(r for r in report["runs"] if r["run"] == "epoch_units")
        moved = next(s for s in run["series"] if s["tag"] == "val/loss")
        assert moved["axis"] == {"run": "epoch_units", "tag": "train/loss"}
        assert "axis" not in next(s for s in run["series"] if s["tag"] == "train/loss")

        def points(**params):
            return get_json(base + "/data/plugin/lossdoctor/series?" + urllib.parse.urlencode(params))

        as_logged = points(run="epoch_units", tag="val/loss")
        drawn = points(run="epoch_units", tag="val/loss", axis_run="epoch_units", axis_tag="train/loss")
        at_step = points(run="step_units", tag="val/loss")
        assert as_logged["steps"] == list(range(30))
        assert drawn["values"] == as_logged["values"]
        assert np.abs(np.subtract(drawn["steps"], at_step["steps"])).max() <= 30  # one epoch's batches
