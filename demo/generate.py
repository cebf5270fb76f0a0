#!/usr/bin/env python
"""Train small models that each show one loss-curve pathology, and log them for TensorBoard.

Every curve under ``demo/logs`` comes from a real (small) training run done here with
TensorFlow/Keras on data generated with numpy: nothing is drawn by hand. The runs are written in
the layouts people actually meet:

- Keras ``TensorBoard`` callback: ``RUN/train`` + ``RUN/validation``, tags ``epoch_loss``,
  ``epoch_accuracy``, ``epoch_learning_rate`` (and ``batch_loss`` with ``update_freq=N``);
- custom training loops with ``tf.summary`` writers;
- the way ``torch.utils.tensorboard`` / tensorboardX write (``simple_value`` summaries through
  TensorBoard's own ``EventFileWriter``, tags ``Loss/train`` + ``Loss/val``);
- the way PyTorch Lightning's ``TensorBoardLogger`` writes (``train_loss`` per step,
  ``val_loss`` per validation, an ``epoch`` tag).

Usage::

    python demo/generate.py [--out demo/logs] [--only NAME [--only NAME ...]] [--list]
    python demo/generate.py --sweeps [--out demo/sweeps]   # the small hyperparameter sweeps

The sweeps (``demo/sweeps``, kept apart from ``demo/logs``, whose runs other tests count) log
their hyperparameters as people do: Keras runs with TensorBoard's ``hp.KerasCallback``, and a
PyTorch-style sweep with ``SummaryWriter.add_hparams``' layout (the HParams plugin's
experiment / session-start / session-end summaries and the metric in a ``RUN/<time.time()>``
sub-folder), written with TensorBoard's own ``hparams.summary`` protos and ``EventFileWriter``.

Each run folder is deleted before it is written, so stale event files never accumulate.
Deterministic given the seeds below (values; wall times are real).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "logs")

tf.config.experimental.enable_op_determinism()


# --------------------------------------------------------------------------------------------
# Data (numpy only, no downloads)
# --------------------------------------------------------------------------------------------

N_FEATURES = 20
N_CLASSES = 10


def teacher_task(n_train, n_val, seed=0, label_noise=0.0, val_label_noise=None):
    """A 10-class task whose labels come from a fixed random non-linear "teacher" network.

    Inputs are standardised Gaussian features; the class is the argmax of a random 2-layer tanh
    network's logits, so the task is learnable but clearly non-linear. `label_noise` replaces that
    fraction of the training labels with uniformly random classes (the validation labels stay
    clean unless `val_label_noise` is given).
    """
    teacher = np.random.RandomState(1234)  # the task itself never changes
    w1 = teacher.normal(0, 1.0, (N_FEATURES, 64)) / np.sqrt(N_FEATURES) * 2.5
    b1 = teacher.normal(0, 0.5, 64)
    w2 = teacher.normal(0, 1.0, (64, N_CLASSES))
    rng = np.random.RandomState(seed + SEED_OFFSET)

    def make(n, noise):
        x = rng.normal(0, 1, (n, N_FEATURES)).astype("float32")
        y = np.argmax(np.tanh(x @ w1 + b1) @ w2, axis=1)
        if noise:
            flip = rng.rand(n) < noise
            y[flip] = rng.randint(0, N_CLASSES, flip.sum())
        return x, y.astype("int64")

    x_tr, y_tr = make(n_train, label_noise)
    x_va, y_va = make(n_val, val_label_noise or 0.0)
    return (x_tr, y_tr), (x_va, y_va)


def spirals_task(n_train, n_val, seed=0, label_noise=0.0, arms=5):
    """Points on `arms` interleaved spiral arms in 2-D; the class is the arm.

    A classic non-linear toy task: a linear model cannot do much better than chance, a small MLP
    gets it nearly right. Inputs are standardised; a little positional noise makes neighbouring
    arms overlap slightly, so even a perfect model keeps a small, non-zero loss. `label_noise`
    replaces that fraction of the *training* labels with random classes (validation stays clean).
    """
    rng = np.random.RandomState(seed + SEED_OFFSET)

    def make(n, noise):
        y = rng.randint(0, arms, n)
        r = np.sqrt(rng.rand(n))
        theta = y * 2 * np.pi / arms + r * 2 * np.pi
        x = np.stack([r * np.cos(theta), r * np.sin(theta)], 1) + rng.normal(0, 0.04, (n, 2))
        if noise:
            flip = rng.rand(n) < noise
            y = y.copy()
            y[flip] = rng.randint(0, arms, flip.sum())
        return (x / 0.58).astype("float32"), y.astype("int64")

    return make(n_train, label_noise), make(n_val, 0.0)


def regression_task(n_train, n_val, seed=0, n_features=8):
    """A noisy linear regression with standardised features."""
    rng = np.random.RandomState(seed + SEED_OFFSET)
    w = rng.normal(0, 1, n_features)

    def make(n):
        x = rng.normal(0, 1, (n, n_features))
        y = x @ w + 0.3 * rng.normal(0, 1, n)
        return x.astype("float32"), y.astype("float32")[:, None]

    return make(n_train), make(n_val)


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def reset_dir(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)


class TorchStyleWriter:
    """Writes scalars exactly as torch.utils.tensorboard / tensorboardX do: `simple_value`."""

    def __init__(self, logdir):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        os.makedirs(logdir, exist_ok=True)
        self._writer = EventFileWriter(logdir)

    def add_scalar(self, tag, value, step):
        from tensorboard.compat.proto import event_pb2, summary_pb2

        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(value))]
        )
        self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def close(self):
        self._writer.flush()
        self._writer.close()


# Added to every seed: 0 gives the committed demo; other values give fresh variants of every
# run (new data, new initialisation) to check that verdicts hold on runs nobody tuned for.
SEED_OFFSET = 0


def seed_all(seed):
    keras.utils.set_random_seed(seed + SEED_OFFSET)


def tb_callback(run_dir, update_freq="epoch"):
    return keras.callbacks.TensorBoard(
        log_dir=run_dir, update_freq=update_freq, write_graph=False, histogram_freq=0
    )


def mlp(widths, n_out=N_CLASSES, activation="relu", n_in=N_FEATURES, **dense_kwargs):
    layers = [keras.Input((n_in,))]
    for w in widths:
        layers.append(keras.layers.Dense(w, activation=activation, **dense_kwargs))
    layers.append(keras.layers.Dense(n_out))
    return keras.Sequential(layers)


def keras_classifier_run(run_dir, model, data, *, epochs, optimizer, batch_size=64,
                         update_freq="epoch"):
    (x_tr, y_tr), (x_va, y_va) = data
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        x_tr, y_tr, validation_data=(x_va, y_va), epochs=epochs, batch_size=batch_size,
        callbacks=[tb_callback(run_dir, update_freq)], verbose=0, shuffle=True,
    )


def batches(x, y, batch_size, rng):
    idx = rng.permutation(len(x))
    for i in range(0, len(x) - batch_size + 1, batch_size):
        j = idx[i:i + batch_size]
        yield x[j], y[j]


def make_step(model, optimizer, loss_fn):
    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function
    def evaluate(x, y):
        return loss_fn(y, model(x, training=False))

    return step, evaluate


stable_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


# --------------------------------------------------------------------------------------------
# The runs
# --------------------------------------------------------------------------------------------

ARMS = 5
SPIRAL_TRAIN = 6400  # 100 steps of 64 per epoch


def spiral_mlp(widths=(128, 128), **kwargs):
    return mlp(list(widths), n_out=ARMS, n_in=2, **kwargs)


def run_healthy(out):
    """Keras callback layout with per-batch logging (update_freq=25); converges and flattens.

    Note: with an integer `update_freq`, Keras 3 only writes the epoch summaries when the global
    batch count at the end of an epoch is a multiple of `update_freq` (its batch-level
    `record_if` is still active), so 100 steps per epoch and update_freq=25 keep every epoch.
    """
    seed_all(11)
    data = spirals_task(SPIRAL_TRAIN, 1500, seed=1)
    keras_classifier_run(out, spiral_mlp(), data, epochs=40,
                         optimizer=keras.optimizers.Adam(1e-3), update_freq=25)


def run_too_early(out):
    """Same recipe as healthy, only 4 epochs logged so far."""
    seed_all(12)
    data = spirals_task(SPIRAL_TRAIN, 1500, seed=1)
    keras_classifier_run(out, spiral_mlp(), data, epochs=4, optimizer=keras.optimizers.Adam(1e-3))


def run_lr_too_low(out):
    """Same recipe as healthy with a learning rate 500x smaller (2e-6 instead of 1e-3)."""
    seed_all(11)
    data = spirals_task(SPIRAL_TRAIN, 1500, seed=1)
    keras_classifier_run(out, spiral_mlp(), data, epochs=40, optimizer=keras.optimizers.Adam(2e-6))


def run_dead_relu(out):
    """ReLU network whose biases start at -5: every hidden unit is dead from step 0."""
    seed_all(13)
    data = spirals_task(SPIRAL_TRAIN, 1500, seed=1)
    model = spiral_mlp(bias_initializer=keras.initializers.Constant(-5.0))
    keras_classifier_run(out, model, data, epochs=30,
                         optimizer=keras.optimizers.SGD(0.05, momentum=0.9))


def run_overfitting(out):
    """A 2x512 network, no regularisation, on 64 training points with 25% wrong labels."""
    seed_all(14)
    data = spirals_task(64, 1500, seed=2, label_noise=0.25)
    keras_classifier_run(out, spiral_mlp((512, 512)), data, epochs=100,
                         optimizer=keras.optimizers.Adam(1e-3), batch_size=64)


def run_data_problem(out):
    """80% of the training labels are random (a broken label join); validation labels are clean."""
    seed_all(15)
    data = spirals_task(8000, 1500, seed=3, label_noise=0.8)
    keras_classifier_run(out, spiral_mlp((64, 64)), data, epochs=30,
                         optimizer=keras.optimizers.Adam(3e-3), batch_size=100)


def run_underfitting(out):
    """A linear model (softmax regression) on the spirals: far too small for the task."""
    seed_all(16)
    data = spirals_task(SPIRAL_TRAIN, 1500, seed=1)
    keras_classifier_run(out, spiral_mlp(()), data, epochs=40,
                         optimizer=keras.optimizers.Adam(1e-2))


def run_diverging(out):
    """Hand-written SGD with the update sign flipped (`w += lr * g`): the loss walks uphill.

    Custom loop, one folder, tags `loss/train` and `loss/validation`, one point per epoch.
    """
    seed_all(17)
    (x_tr, y_tr), (x_va, y_va) = regression_task(4000, 1000, seed=4)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    lr = 3e-4

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        for v, g in zip(model.trainable_variables, grads):
            v.assign_add(lr * g)  # BUG: should be assign_sub
        return loss

    writer = tf.summary.create_file_writer(out)
    rng = np.random.RandomState(0)
    for epoch in range(1, 31):
        losses = [float(step(xb, yb)) for xb, yb in batches(x_tr, y_tr, 64, rng)]
        val = float(tf.reduce_mean(tf.square(model(x_va) - y_va)))
        with writer.as_default():
            tf.summary.scalar("loss/train", float(np.mean(losses)), step=epoch)
            tf.summary.scalar("loss/validation", val, step=epoch)
    writer.close()


def run_nan_softmax(out):
    """Hand-written softmax cross-entropy (exp overflows) + a learning rate that keeps rising.

    An LR range test gone wrong: SGD (momentum 0.9) on the 20-feature teacher task, a 2x256 ReLU
    net, the learning rate multiplied by 10 every 200 steps from 1e-3 (1e3 at step 1,200), no
    gradient clipping, and a hand-written `exp(z) / sum(exp(z))` cross-entropy without the
    max-subtraction. The NaN is certain, and comes after finite points, by construction: at
    first the rate is tiny and the inputs standardised, so the logits stay of order 1 and the
    loss is finite and falls; nothing bounds the logits while the rate grows 10x every 200 steps,
    so one update moves them past float32's exp range (exp(z) = inf for z > 88.7; inf/inf is
    NaN), and from then on every weight is NaN. Custom loop with tf.summary; RUN/train and
    RUN/validation writers, tag `loss` (and `learning_rate` on train), global step.
    """
    seed_all(18)
    (x_tr, y_tr), (x_va, y_va) = teacher_task(6400, 1500, seed=1)

    def naive_softmax_ce(y, z):
        p = tf.exp(z) / tf.reduce_sum(tf.exp(z), axis=1, keepdims=True)  # no max-subtraction
        return -tf.reduce_mean(tf.math.log(tf.gather(p, y, batch_dims=1)))

    seed_all(1)
    model = mlp([256, 256])
    # ExponentialDecay with a rate above 1 grows: lr = 1e-3 * 10 ** (step / 200).
    sched = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=200, decay_rate=10.0)
    opt = keras.optimizers.SGD(sched, momentum=0.9)
    step, evaluate = make_step(model, opt, naive_softmax_ce)
    w_tr = tf.summary.create_file_writer(os.path.join(out, "train"))
    w_va = tf.summary.create_file_writer(os.path.join(out, "validation"))
    rng = np.random.RandomState(SEED_OFFSET)
    gstep = 0
    for epoch in range(12):
        for xb, yb in batches(x_tr, y_tr, 64, rng):
            loss = float(step(xb, yb))
            gstep += 1
            if gstep % 5 == 0:
                with w_tr.as_default():
                    tf.summary.scalar("loss", loss, step=gstep)
                    tf.summary.scalar("learning_rate", float(sched(gstep)), step=gstep)
        with w_va.as_default():
            tf.summary.scalar("loss", float(evaluate(x_va, y_va)), step=gstep)
    w_tr.close()
    w_va.close()


def run_blowup(out):
    """Linear LR warm-up (400 steps) to a peak that is too high, then cosine decay.

    The loss falls during warm-up, then runs away around the peak and never comes back (the
    large updates kill the ReLUs). Custom loop, one folder, tags `train/loss`, `val/loss`,
    `learning_rate`; global step.
    """
    seed_all(19)
    (x_tr, y_tr), (x_va, y_va) = spirals_task(SPIRAL_TRAIN, 1500, seed=1)
    seed_all(1)
    model = spiral_mlp()
    epochs, steps_per_epoch, warmup, peak = 20, SPIRAL_TRAIN // 64, 400, 0.7
    sched = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=epochs * steps_per_epoch - warmup,
        warmup_target=peak, warmup_steps=warmup, alpha=0.0,
    )
    opt = keras.optimizers.SGD(sched, momentum=0.9)
    step, evaluate = make_step(model, opt, stable_ce)
    w = tf.summary.create_file_writer(out)
    rng = np.random.RandomState(0)
    gstep = 0
    for epoch in range(epochs):
        for xb, yb in batches(x_tr, y_tr, 64, rng):
            loss = float(step(xb, yb))
            gstep += 1
            if gstep % 10 == 0:
                with w.as_default():
                    tf.summary.scalar("train/loss", loss, step=gstep)
                    tf.summary.scalar("learning_rate", float(sched(gstep)), step=gstep)
        with w.as_default():
            tf.summary.scalar("val/loss", float(evaluate(x_va, y_va)), step=gstep)
    w.close()


def _torch_style_loop(out, *, seed, widths, optimizer, epochs, val_every, log_every,
                      tag_train="Loss/train", tag_val="Loss/val", lightning=False,
                      activation="relu"):
    """Per-step training loss and periodic validation, written the PyTorch way."""
    (x_tr, y_tr), (x_va, y_va) = spirals_task(SPIRAL_TRAIN, 1500, seed=5)
    seed_all(seed)
    model = spiral_mlp(widths, activation=activation)
    step, evaluate = make_step(model, optimizer, stable_ce)
    writer = TorchStyleWriter(out)
    rng = np.random.RandomState(seed + SEED_OFFSET)
    gstep = 0
    for epoch in range(epochs):
        for xb, yb in batches(x_tr, y_tr, 64, rng):
            loss = float(step(xb, yb))
            gstep += 1
            if gstep % log_every == 0:
                writer.add_scalar(tag_train, loss, gstep)
                if lightning:
                    writer.add_scalar("epoch", epoch, gstep)
            if gstep % val_every == 0:
                writer.add_scalar(tag_val, float(evaluate(x_va, y_va)), gstep)
                if lightning:
                    writer.add_scalar("epoch", epoch, gstep)
    writer.close()


def run_still_learning(out):
    """torch.utils.tensorboard style: Adam 1e-3, stopped after 7 epochs while still improving."""
    _torch_style_loop(out, seed=20, widths=(128, 128), optimizer=keras.optimizers.Adam(1e-3),
                      epochs=7, val_every=50, log_every=2)


def run_healthy_torchstyle(out):
    """torch.utils.tensorboard style, same recipe trained to convergence (30 epochs)."""
    _torch_style_loop(out, seed=21, widths=(128, 128), optimizer=keras.optimizers.Adam(1e-3),
                      epochs=30, val_every=100, log_every=5)


class TriangularCyclicLR(keras.optimizers.schedules.LearningRateSchedule):
    """Smith's triangular cyclical learning rate (torch's `CyclicLR(mode="triangular")`,
    tensorflow-addons' `TriangularCyclicalLearningRate`): from `base` up to `peak` over
    `step_size` steps and back down over as many, again and again."""

    def __init__(self, base, peak, step_size):
        self.base, self.peak, self.step_size = base, peak, step_size

    def __call__(self, step):
        cycle = tf.floor(1.0 + tf.cast(step, tf.float32) / (2.0 * self.step_size))
        x = tf.abs(tf.cast(step, tf.float32) / self.step_size - 2.0 * cycle + 1.0)
        return self.base + (self.peak - self.base) * tf.maximum(0.0, 1.0 - x)

    def get_config(self):
        return {"base": self.base, "peak": self.peak, "step_size": self.step_size}


def run_oscillation(out):
    """PyTorch Lightning style: a cyclical learning rate whose peak is far too high.

    SGD with a triangular cyclical rate from 0.05 up to 4.0 and back every 2 epochs (step size
    100 steps): each cycle the rising rate throws the loss back up and the falling one lets it
    come down, so it swings around a level below chance (ln 5) and never settles. By
    construction: the swing follows the schedule, not chance; LeakyReLU units cannot die, so a
    peak never collapses the network to a constant guess at ln 5; gradient clipping (global norm
    1) bounds every update, so the weights cannot run away and the loss cannot climb for good.
    """
    optimizer = keras.optimizers.SGD(TriangularCyclicLR(0.05, 4.0, step_size=100),
                                     global_clipnorm=1.0)
    _torch_style_loop(out, seed=22, widths=(128, 128), activation="leaky_relu",
                      optimizer=optimizer, epochs=20, val_every=100, log_every=5,
                      tag_train="train_loss", tag_val="val_loss", lightning=True)


# --------------------------------------------------------------------------------------------
# Sweeps (demo/sweeps): several runs of one recipe, hyperparameters logged for TensorBoard
# --------------------------------------------------------------------------------------------

KERAS_SWEEP = [(opt, lr) for opt in ("Adam", "SGD") for lr in (0.001, 0.01, 0.3, 1.0)]
TORCH_SWEEP = [(peak, seed) for peak in (0.05, 0.3, 0.9) for seed in (1, 2, 3)]


def sweep_keras_lr_optimizer(out):
    """8 Keras runs (spirals, 2x64 MLP, 20 epochs of 50 steps): Adam and SGD (momentum 0.9)
    at learning rates 0.001, 0.01, 0.3 and 1.0. Named `run-N` as in TensorBoard's HParams
    tutorial: the settings are only in the `hp.KerasCallback` record (`optimizer`,
    `learning_rate`) next to the Keras callback's `run-N/train` + `run-N/validation`."""
    from tensorboard.plugins.hparams import api as hp

    data = spirals_task(3200, 1000, seed=6)
    for i, (opt, lr) in enumerate(KERAS_SWEEP):
        run_dir = os.path.join(out, f"run-{i}")
        reset_dir(run_dir)
        seed_all(30 + i)
        optimizer = keras.optimizers.Adam(lr) if opt == "Adam" else keras.optimizers.SGD(lr, momentum=0.9)
        model = spiral_mlp((64, 64))
        model.compile(optimizer=optimizer, metrics=["accuracy"],
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        (x_tr, y_tr), (x_va, y_va) = data
        model.fit(x_tr, y_tr, validation_data=(x_va, y_va), epochs=20, batch_size=64, verbose=0,
                  callbacks=[tb_callback(run_dir),
                             hp.KerasCallback(run_dir, {"optimizer": opt, "learning_rate": lr})])


def add_hparams_record(run_dir, hparams, metrics, wall_time):
    """What `torch.utils.tensorboard.SummaryWriter.add_hparams(hparams, metrics)` writes: in a
    new `RUN/<time.time()>` folder, the HParams plugin's experiment, session-start and
    session-end summaries, then each metric as a scalar. Built with TensorBoard's own
    `hparams.summary` and written with its `EventFileWriter`."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.plugins.hparams import summary as hp_summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    infos = [api_pb2.HParamInfo(name=k, type=api_pb2.DATA_TYPE_FLOAT64) for k in hparams]
    metric_infos = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=k)) for k in metrics]
    summaries = [
        hp_summary.experiment_pb(infos, metric_infos, time_created_secs=wall_time),
        hp_summary.session_start_pb(hparams, start_time_secs=wall_time),
        hp_summary.session_end_pb(api_pb2.STATUS_SUCCESS, end_time_secs=wall_time),
    ]
    writer = EventFileWriter(os.path.join(run_dir, repr(wall_time)))
    for s in summaries:
        proto = summary_pb2.Summary.FromString(s.SerializeToString())
        writer.add_event(event_pb2.Event(wall_time=wall_time, step=0, summary=proto))
    for tag, value in metrics.items():
        proto = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
        writer.add_event(event_pb2.Event(wall_time=wall_time, step=0, summary=proto))
    writer.close()


def sweep_torch_warmup_peak(out):
    """9 PyTorch-style runs (spirals, 2x64 MLP, SGD momentum 0.9, 200 warm-up steps then cosine
    decay, 16 epochs of 50 steps): peak learning rates 0.05, 0.3 and 0.9, three seeds each.
    `SummaryWriter()`'s default run names (date, time, host), `Loss/train` + `lr` every 5 steps,
    `Loss/val` every epoch, and the settings in an `add_hparams` record (`lr`, `seed`,
    `warmup_steps`, metric `hparam/best_val_loss`)."""
    (x_tr, y_tr), (x_va, y_va) = spirals_task(3200, 1000, seed=8)
    epochs, steps_per_epoch, warmup = 16, 50, 200
    for i, (peak, seed) in enumerate(TORCH_SWEEP):
        run_dir = os.path.join(out, f"Dec02_10-{i:02d}-00_demo")
        reset_dir(run_dir)
        seed_all(seed)
        model = spiral_mlp((64, 64))
        sched = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=epochs * steps_per_epoch - warmup, warmup_target=peak,
            warmup_steps=warmup, alpha=0.0)
        step, evaluate = make_step(model, keras.optimizers.SGD(sched, momentum=0.9), stable_ce)
        writer = TorchStyleWriter(run_dir)
        rng = np.random.RandomState(seed + SEED_OFFSET)
        gstep, best = 0, float("inf")
        for epoch in range(epochs):
            for xb, yb in batches(x_tr, y_tr, 64, rng):
                loss = float(step(xb, yb))
                gstep += 1
                if gstep % 5 == 0:
                    writer.add_scalar("Loss/train", loss, gstep)
                    writer.add_scalar("lr", float(sched(gstep)), gstep)
            val = float(evaluate(x_va, y_va))
            best = min(best, val) if np.isfinite(val) else best
            writer.add_scalar("Loss/val", val, gstep)
        writer.close()
        add_hparams_record(run_dir, {"lr": peak, "seed": seed, "warmup_steps": warmup},
                           {"hparam/best_val_loss": best}, time.time())


SWEEPS = {
    "keras_lr_optimizer": sweep_keras_lr_optimizer,
    "torch_warmup_peak": sweep_torch_warmup_peak,
}
DEFAULT_SWEEPS_OUT = os.path.join(HERE, "sweeps")


RUNS = {
    "healthy": run_healthy,
    "healthy_torchstyle": run_healthy_torchstyle,
    "still_learning": run_still_learning,
    "too_early": run_too_early,
    "lr_too_low": run_lr_too_low,
    "dead_relu": run_dead_relu,
    "overfitting": run_overfitting,
    "data_problem": run_data_problem,
    "underfitting": run_underfitting,
    "diverging": run_diverging,
    "nan_softmax_high_lr": run_nan_softmax,
    "blowup_after_warmup": run_blowup,
    "oscillation": run_oscillation,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="log directory (default: demo/logs)")
    parser.add_argument("--only", action="append", choices=sorted(RUNS) + sorted(SWEEPS), metavar="NAME",
                        help="generate only this run (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the run names and exit")
    parser.add_argument("--seed-offset", type=int, default=0,
                        help="add to every seed: a variant of each run (default 0: the demo)")
    parser.add_argument("--sweeps", action="store_true",
                        help="generate the hyperparameter sweeps instead (default --out: demo/sweeps)")
    args = parser.parse_args(argv)
    global SEED_OFFSET
    SEED_OFFSET = args.seed_offset
    if args.list:
        print("\n".join(SWEEPS if args.sweeps else RUNS))
        return 0
    runs = SWEEPS if args.sweeps else RUNS
    out = DEFAULT_SWEEPS_OUT if args.sweeps and args.out == DEFAULT_OUT else args.out
    names = args.only or list(runs)
    total = time.time()
    for name in names:
        t0 = time.time()
        run_dir = os.path.join(out, name)
        reset_dir(run_dir)
        runs[name](run_dir)
        print(f"{name:24s} {time.time() - t0:6.1f}s", flush=True)
    print(f"{'total':24s} {time.time() - total:6.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
