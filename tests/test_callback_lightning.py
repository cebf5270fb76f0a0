"""The Lightning callback in real `Trainer.fit` runs (CPU torch, tiny models, synthetic data): it
stops on an overflowing softmax and on overfitting with the reason and the best step, leaves a
healthy run alone, and logs its verdict as text through the trainer's TensorBoard logger.

Skipped when torch or Lightning is not installed (`pip install -e ".[lightning]"`)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")

from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from tb_lossdoctor.callbacks.lightning import TEXT_TAG, LossDoctorCallback  # noqa: E402
from tb_lossdoctor.history import verdict  # noqa: E402
from conftest import cli_report, stop_lines  # noqa: E402
from training_tasks import spirals_task, teacher_task  # noqa: E402

ALL_STOPS = ("nan", "blowup", "diverging", "overfitting")


def naive_softmax_ce(z, y):
    """Softmax as exp / sum(exp) with no max-subtraction, then log: overflows on large logits."""
    p = torch.exp(z) / torch.exp(z).sum(1, keepdim=True)
    return -torch.log(p.gather(1, y[:, None])).mean()


class Classifier(L.LightningModule):
    """An MLP classifier that logs `train_loss` per epoch and `val_loss` per validation."""

    def __init__(self, n_in, widths, n_out, optimizer, loss_fn):
        super().__init__()
        sizes = [n_in, *widths]
        layers = []
        for a, b in zip(sizes, sizes[1:]):
            layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
        self.net = torch.nn.Sequential(*layers, torch.nn.Linear(sizes[-1], n_out))
        self.make_optimizer, self.loss_fn = optimizer, loss_fn

    def training_step(self, batch, index):
        loss = self.loss_fn(self.net(batch[0]), batch[1])
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, index):
        self.log("val_loss", self.loss_fn(self.net(batch[0]), batch[1]))

    def configure_optimizers(self):
        return self.make_optimizer(self.parameters())


def fit(tmp_path, model, data, doctor, epochs, batch_size=64):
    """A real Trainer.fit on the CPU with a TensorBoard logger; returns the logger's folder."""
    (x, y), (xv, yv) = data
    train = DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=batch_size, shuffle=True)
    val = DataLoader(TensorDataset(torch.tensor(xv), torch.tensor(yv)), batch_size=2000)
    logger = TensorBoardLogger(str(tmp_path), name="run", version=0)
    trainer = L.Trainer(
        max_epochs=epochs, callbacks=[doctor], logger=logger, accelerator="cpu", devices=1,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        num_sanity_val_steps=0, deterministic=True, log_every_n_steps=1,
    )
    trainer.fit(model, train, val)
    return trainer, logger.log_dir


def logged(log_dir):
    """({tag: [(step, value)]} of the scalars, {step: text} of the verdicts) read back from the
    logger's event files with TensorBoard's reader."""
    acc = EventAccumulator(log_dir, size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    scalars = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    [tag] = [t for t in acc.Tags()["tensors"] if t.startswith(TEXT_TAG)]
    texts = {e.step: tensor_util.make_ndarray(e.tensor_proto).item().decode() for e in acc.Tensors(tag)}
    return scalars, texts


def test_stops_on_the_overflowing_softmax(tmp_path, capsys):
    """The demo's bug in torch: a hand-written softmax that overflows on a heavy-tailed raw
    feature, SGD with momentum: a few finite epochs, then a non-finite loss."""
    L.seed_everything(1, workers=True)
    data = teacher_task(1280, 1500, heavy_sigma=2.0)
    model = Classifier(20, (64, 64), 10, lambda p: torch.optim.SGD(p, lr=0.09, momentum=0.9), naive_softmax_ce)
    doctor = LossDoctorCallback()
    trainer, log_dir = fit(tmp_path, model, data, doctor, epochs=10)

    scalars, texts = logged(log_dir)
    losses = {tag: scalars[tag] for tag in ("train_loss", "val_loss")}
    bad_steps = [s for points in losses.values() for s, v in points if not math.isfinite(v)]
    assert bad_steps, f"the recipe never overflowed: {losses}"
    reason = doctor.stopped_reason
    assert reason["code"] == "nan" and trainer.should_stop
    assert reason["step"] == min(bad_steps) == trainer.global_step - 1, "stopped at the first non-finite epoch"
    assert doctor.stopped_epoch == trainer.current_epoch - 1 < 9
    [line] = stop_lines(capsys)
    assert line.startswith(f"lossdoctor: stopped training at epoch {doctor.stopped_epoch} (step {reason['step']}): nan: ")
    assert "nan" in texts[reason["step"]]


def test_stops_when_the_training_loss_turns_nan(tmp_path, capsys):
    """Same recipe at lr 0.2 without validation: the training loss itself turns NaN."""
    L.seed_everything(1, workers=True)
    (x, y), _ = teacher_task(1280, 10, heavy_sigma=2.0)
    model = Classifier(20, (64, 64), 10, lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.9), naive_softmax_ce)
    doctor = LossDoctorCallback(stop_on=("nan",))
    loader = DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=64, shuffle=True)
    trainer = L.Trainer(max_epochs=10, callbacks=[doctor], logger=False, accelerator="cpu", devices=1,
                        enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, deterministic=True)
    trainer.fit(model, loader)

    history = doctor.history["train_loss"]
    assert math.isnan(history[-1]) and all(math.isfinite(v) for v in history[:-1]) and len(history) >= 2
    assert doctor.stopped_reason["code"] == "nan" and verdict(doctor.report) is None
    assert doctor.stopped_epoch == len(history) - 1 < 9
    assert len(stop_lines(capsys)) == 1


def test_a_healthy_run_is_not_stopped(tmp_path, capsys):
    """A small MLP on the spirals with Adam: it learns and flattens; nothing to stop on."""
    L.seed_everything(11, workers=True)
    data = spirals_task(1280, 1000, seed=1)
    model = Classifier(2, (64, 64), 5, lambda p: torch.optim.Adam(p, lr=3e-3), torch.nn.functional.cross_entropy)
    doctor = LossDoctorCallback(stop_on=ALL_STOPS)
    trainer, log_dir = fit(tmp_path, model, data, doctor, epochs=12)

    assert doctor.stopped_reason is None and trainer.current_epoch == 12
    assert stop_lines(capsys) == []
    assert verdict(doctor.report) in ("converged", "still_learning")
    scalars, texts = logged(log_dir)
    val_steps = [s for s, _ in scalars["val_loss"]]
    assert sorted(texts) == sorted(set(doctor.history_steps["val_loss"])) == val_steps
    assert verdict(doctor.report) in texts[val_steps[-1]]
    # A validation outside fit is no part of the training history.
    trainer.validate(model, dataloaders=trainer.val_dataloaders, verbose=False)
    assert doctor.history_steps["val_loss"] == val_steps


def test_overfitting_stops_with_the_best_step_and_epoch(tmp_path, capsys):
    """A 2x256 MLP on 64 spiral points with 25% wrong labels (one batch per epoch), Adam 3e-3."""
    L.seed_everything(14, workers=True)
    data = spirals_task(64, 1500, seed=2, label_noise=0.25)
    model = Classifier(2, (256, 256), 5, lambda p: torch.optim.Adam(p, lr=3e-3), torch.nn.functional.cross_entropy)
    doctor = LossDoctorCallback(stop_on=("overfitting",))
    trainer, log_dir = fit(tmp_path, model, data, doctor, epochs=100)

    scalars, _ = logged(log_dir)
    val = scalars["val_loss"]
    best_step, _ = min(val, key=lambda point: point[1])
    reason = doctor.stopped_reason
    assert reason["code"] == "overfitting" and trainer.current_epoch < 100
    assert reason["step"] == doctor.best_step == best_step
    assert doctor.best_epoch == [s for s, _ in val].index(best_step)  # one validation per epoch
    assert doctor.best_epoch < doctor.stopped_epoch, "validation had turned: the best epoch is behind"
    [line] = stop_lines(capsys)
    assert f"best checkpoint at step {best_step}; best epoch {doctor.best_epoch}" in line
    # Read back from the logger's files, the CLI finds the same overfitting at the same step.
    [run] = cli_report(log_dir)["runs"]
    assert run["verdict"] == "overfitting"
    assert next(f for f in run["findings"] if f["code"] == "overfitting")["step"] == best_step
