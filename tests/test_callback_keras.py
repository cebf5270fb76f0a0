"""The Keras callback in real `model.fit` runs (TensorFlow on the CPU, small and seeded): it stops
on the demo's overflowing softmax and on overfitting, naming the best epoch, leaves a healthy run
alone, and writes its verdict as a TensorBoard text summary."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

from tb_lossdoctor import diagnose_history  # noqa: E402
from tb_lossdoctor.callbacks.keras import TEXT_TAG, LossDoctorCallback  # noqa: E402
from tb_lossdoctor.history import verdict  # noqa: E402
from conftest import cli_report, stop_lines  # noqa: E402
from training_tasks import spirals_task, teacher_task  # noqa: E402

ALL_STOPS = ("nan", "blowup", "diverging", "overfitting")


# --- data, as demo/generate.py makes it ------------------------------------------------------


def naive_softmax_ce(y, z):
    """The demo's bug: softmax as exp / sum(exp) with no max-subtraction, then log."""
    y = tf.cast(tf.reshape(y, [-1]), tf.int32)
    p = tf.exp(z) / tf.reduce_sum(tf.exp(z), axis=1, keepdims=True)
    return -tf.reduce_mean(tf.math.log(tf.gather(p, y, batch_dims=1)))


def mlp(n_in, widths, n_out):
    layers = [keras.Input((n_in,))] + [keras.layers.Dense(w, activation="relu") for w in widths]
    return keras.Sequential(layers + [keras.layers.Dense(n_out)])


def stable_ce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


# --- reading results back --------------------------------------------------------------------


def first_nonfinite_epoch(history):
    bad = [i for values in history.values() for i, v in enumerate(values) if not math.isfinite(v)]
    return min(bad) if bad else None


def verdict_texts(log_dir):
    """{step: text} of the callback's text summaries, read back with TensorBoard's reader."""
    acc = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    acc.Reload()
    assert acc.SummaryMetadata(TEXT_TAG).plugin_data.plugin_name == "text"
    return {e.step: tensor_util.make_ndarray(e.tensor_proto).item().decode() for e in acc.Tensors(TEXT_TAG)}


# --- the runs --------------------------------------------------------------------------------


def test_stops_on_the_overflowing_softmax_and_restores_finite_weights(tmp_path, capsys):
    """The demo's former nan_softmax_high_lr recipe (the demo now ramps the LR) in model.fit: SGD lr 0.09 + momentum 0.9 on a ReLU
    net whose hand-written softmax overflows on the heavy-tailed feature."""
    (x, y), (xv, yv) = teacher_task(6400, 1500)
    keras.utils.set_random_seed(1)
    model = mlp(20, (256, 256), 10)
    model.compile(optimizer=keras.optimizers.SGD(0.09, momentum=0.9), loss=naive_softmax_ce)
    doctor = LossDoctorCallback(str(tmp_path), restore_best_weights=True)
    history = model.fit(x, y, validation_data=(xv, yv), epochs=12, batch_size=64,
                        callbacks=[doctor], verbose=0).history

    bad = first_nonfinite_epoch(history)
    assert bad is not None, f"the recipe overflowed in no epoch: {history}"
    assert doctor.stopped_reason["code"] == "nan"
    assert doctor.stopped_epoch == bad == doctor.stopped_reason["step"]
    assert len(history["loss"]) == bad + 1, "training stopped at the first non-finite epoch"
    # Restored: the weights of the best validation epoch, finite, giving that epoch's loss again.
    assert doctor.restored and all(np.isfinite(w).all() for w in model.get_weights())
    best = doctor.best_epoch
    assert best == int(np.nanargmin(np.where(np.isfinite(history["val_loss"]), history["val_loss"], np.nan)))
    assert model.evaluate(xv, yv, verbose=0) == pytest.approx(history["val_loss"][best], rel=1e-4)

    [line] = stop_lines(capsys)
    assert line.startswith(f"lossdoctor: stopped training at epoch {bad}: nan: ")
    assert f"restored the weights of epoch {best}" in line
    texts = verdict_texts(tmp_path)
    assert sorted(texts) == list(range(bad + 1))
    assert "nan" in texts[bad] and "too_early" in texts[0]


def test_stops_when_the_training_loss_turns_nan(tmp_path, capsys):
    """Same recipe, no validation set, lr 0.12: a few finite epochs, then the training loss is
    NaN (every weight is): the run died, with no trend verdict."""
    (x, y), _ = teacher_task(6400, 10)
    keras.utils.set_random_seed(1)
    model = mlp(20, (256, 256), 10)
    model.compile(optimizer=keras.optimizers.SGD(0.12, momentum=0.9), loss=naive_softmax_ce)
    doctor = LossDoctorCallback(stop_on=("nan",))
    history = model.fit(x, y, epochs=12, batch_size=64, callbacks=[doctor], verbose=0).history

    bad = first_nonfinite_epoch(history)
    assert bad is not None and bad >= 2, f"expected a few finite epochs, then NaN: {history}"
    assert math.isnan(history["loss"][bad])
    assert (doctor.stopped_epoch, doctor.stopped_reason["code"]) == (bad, "nan")
    assert verdict(doctor.report) is None  # died: no trend verdict
    assert len(history["loss"]) == bad + 1 and not doctor.restored
    assert len(stop_lines(capsys)) == 1


def test_a_healthy_run_is_not_stopped(tmp_path, capsys):
    """demo/generate.py's healthy spirals MLP (Adam 1e-3), 15 epochs: nothing to stop on."""
    keras.utils.set_random_seed(11)
    (x, y), (xv, yv) = spirals_task(6400, 1500, seed=1)
    model = mlp(2, (128, 128), 5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=stable_ce(), metrics=["accuracy"])
    doctor = LossDoctorCallback(str(tmp_path), stop_on=ALL_STOPS)
    board = keras.callbacks.TensorBoard(str(tmp_path), write_graph=False)  # the same log_dir
    fit = model.fit(x, y, validation_data=(xv, yv), epochs=15, batch_size=64,
                    callbacks=[board, doctor], verbose=0)

    assert doctor.stopped_reason is None and doctor.stopped_epoch is None
    assert len(fit.history["loss"]) == 15 and stop_lines(capsys) == []
    assert verdict(doctor.report) in ("converged", "still_learning")
    assert doctor.report["runs"][0]["status"] == "ok"
    # The API on fit's own History object agrees with the callback.
    assert verdict(diagnose_history(fit)) == verdict(doctor.report)
    texts = verdict_texts(tmp_path)
    assert sorted(texts) == list(range(15))
    assert verdict(doctor.report) in texts[14]
    # Read back from the TensorBoard callback's logs, the CLI gives the callback's verdict.
    [run] = cli_report(tmp_path)["runs"]
    assert run["verdict"] == verdict(doctor.report)
    assert {s["tag"] for s in run["series"]} >= {"epoch_loss"}


def test_overfitting_stops_at_the_best_epoch(tmp_path, capsys):
    """demo/generate.py's overfitting recipe (a 2x512 MLP on 64 spiral points, 25% wrong labels)
    with Adam at 3e-3 instead of 1e-3, so validation has turned before the engine can judge."""
    keras.utils.set_random_seed(14)
    (x, y), (xv, yv) = spirals_task(64, 1500, seed=2, label_noise=0.25)
    model = mlp(2, (512, 512), 5)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=stable_ce(), metrics=["accuracy"])
    doctor = LossDoctorCallback(str(tmp_path), stop_on=("overfitting",), restore_best_weights=True)
    history = model.fit(x, y, validation_data=(xv, yv), epochs=100, batch_size=64,
                        callbacks=[doctor], verbose=0).history

    epochs_run = len(history["val_loss"])
    assert epochs_run < 100, "stopped before the end"
    reason = doctor.stopped_reason
    best = int(np.argmin(history["val_loss"]))
    assert reason["code"] == "overfitting" and doctor.stopped_epoch == epochs_run - 1
    assert reason["step"] == reason["evidence"]["best_val_step"] == best == doctor.best_epoch
    assert best < doctor.stopped_epoch, "validation had turned: the best epoch is behind"
    assert model.evaluate(xv, yv, verbose=0)[0] == pytest.approx(history["val_loss"][best], rel=1e-4)
    [line] = stop_lines(capsys)
    assert ": overfitting: " in line and f"best checkpoint at step {best}" in line
    assert "overfitting" in verdict_texts(tmp_path)[epochs_run - 1]


def test_unknown_stop_codes_are_refused():
    with pytest.raises(ValueError, match="overfit"):
        LossDoctorCallback(stop_on=("overfit",))
