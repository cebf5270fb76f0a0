"""Loss components, from real trainings: penalty terms rise while the model learns.

- A small VAE (PyTorch, `torch.utils.tensorboard.SummaryWriter`): its KL term starts near 0 (the
  encoder says nothing yet) and grows several-fold as the latent code carries information, while
  the reconstruction and the total loss fall. Logged with the total (`train/loss`, ...) and with
  the parts only (`Loss/recon`, `Loss/kld`).
- A TensorFlow Object Detection API-style custom loop (`tf.summary`): `Loss/total_loss`,
  `Loss/classification_loss` and the L2 `Loss/regularization_loss`, which grows with the
  weights from their small initial values.

A rising penalty term is not a blow-up; the verdict is the total loss's (the reconstruction's
when no total is logged); `Loss/total_loss` is the loss, not a metric named `loss_loss`.
"""

from __future__ import annotations

import numpy as np
import pytest

from tb_lossdoctor.engine import diagnose
from tb_lossdoctor.readers.logdir import read_logdir
from training_tasks import teacher_task

EPOCHS = 40
EVENTS = {"blowup", "nan", "diverging"}


def _series_of(logdir) -> dict:
    series, problems, _ = read_logdir(str(logdir))
    assert not problems
    return series


def _rise(series, tag) -> float:
    [values] = [s.values for s in series if s.tag == tag]
    return float(np.median(values[-5:]) / max(np.median(values[:2]), 1e-9))


def _train_vae(logdir, tags: dict) -> None:
    """A 20 -> 2 -> 20 Gaussian VAE on the teacher task's inputs; `tags` names the curves logged
    per epoch: {"loss"|"recon"|"kl": (train tag, validation tag or None)}."""
    torch = pytest.importorskip("torch")
    tb = pytest.importorskip("torch.utils.tensorboard")
    torch.manual_seed(0)
    (x, _), (xv, _) = teacher_task(1500, 300, heavy_sigma=0.3)
    x, xv = torch.from_numpy(x), torch.from_numpy(xv)
    mean, std = x.mean(0), x.std(0)
    x, xv = (x - mean) / std, (xv - mean) / std
    # Correlated inputs: a 2-dimensional code explains much of them.
    mix = torch.randn(20, 20, generator=torch.Generator().manual_seed(1)) * 0.3 + torch.eye(20)
    x, xv = x[:, :2].repeat(1, 10) @ mix + 0.3 * x, xv[:, :2].repeat(1, 10) @ mix + 0.3 * xv
    enc = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    dec = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.Tanh(), torch.nn.Linear(32, 20))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=2e-3)

    def terms(batch):
        mu, logvar = enc(batch).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = ((dec(z) - batch) ** 2).sum(1).mean()
        kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)).mean()
        return recon, kl

    writer = tb.SummaryWriter(str(logdir))
    for epoch in range(EPOCHS):
        for i in range(0, len(x), 100):
            recon, kl = terms(x[i:i + 100])
            opt.zero_grad()
            (recon + kl).backward()
            opt.step()
        with torch.no_grad():
            values = {"train": terms(x), "val": terms(xv)}
        for name, (train_tag, val_tag) in tags.items():
            for split, tag in (("train", train_tag), ("val", val_tag)):
                if tag:
                    recon, kl = (float(t) for t in values[split])
                    writer.add_scalar(tag, {"loss": recon + kl, "recon": recon, "kl": kl}[name], epoch)
    writer.close()


def test_a_vae_whose_kl_term_grows_is_judged_on_its_total_loss(tmp_path):
    _train_vae(tmp_path / "vae", {"loss": ("train/loss", "val/loss"), "recon": ("train/recon_loss", "val/recon_loss"),
                                  "kl": ("train/kl_loss", "val/kl_loss")})
    series = _series_of(tmp_path)
    assert _rise(series, "train/kl_loss") > 2, "the premise: the KL term grew"
    assert _rise(series, "train/loss") < 0.9, "the premise: the total loss fell"
    [run] = diagnose(series)["runs"]
    codes = {f["code"] for f in run["findings"]}
    assert not codes & EVENTS, run["findings"]
    [verdict] = [f for f in run["findings"] if f["code"] == run["verdict"]]
    assert set(verdict["tags"]) == {"vae:train/loss", "vae:val/loss"}, verdict
    assert {"train/kl_loss", "val/kl_loss"} <= {s["tag"] for s in run["series"]}  # still read (NaN checks)


def test_a_vae_logging_only_its_terms_is_judged_on_the_reconstruction(tmp_path):
    _train_vae(tmp_path / "vae_parts", {"recon": ("Loss/recon", None), "kl": ("Loss/kld", None)})
    series = _series_of(tmp_path)
    assert _rise(series, "Loss/kld") > 2
    [run] = diagnose(series)["runs"]
    assert not {f["code"] for f in run["findings"]} & EVENTS, run["findings"]
    [verdict] = [f for f in run["findings"] if f["code"] == run["verdict"]]
    assert verdict["tags"] == ["vae_parts:Loss/recon"], verdict
    assert verdict["summary"].startswith("The training recon loss "), verdict["summary"]  # not "loss recon"


def test_object_detection_style_losses_with_a_growing_regulariser(tmp_path):
    tf = pytest.importorskip("tensorflow")
    tf.keras.utils.set_random_seed(0)
    (x, y), _ = teacher_task(1500, 10, heavy_sigma=0.3)
    l2 = tf.keras.regularizers.L2(1e-3)
    init = tf.keras.initializers.RandomNormal(stddev=0.01)  # small weights that training grows
    model = tf.keras.Sequential([
        tf.keras.Input((20,)),
        tf.keras.layers.Dense(64, activation="relu", kernel_regularizer=l2, kernel_initializer=init),
        tf.keras.layers.Dense(10, kernel_regularizer=l2, kernel_initializer=init),
    ])
    opt = tf.keras.optimizers.Adam(3e-3)
    xent = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    writer = tf.summary.create_file_writer(str(tmp_path / "detector" / "train"))
    step = 0
    with writer.as_default():
        for epoch in range(EPOCHS // 2):
            for i in range(0, len(x), 100):
                with tf.GradientTape() as tape:
                    classification = xent(y[i:i + 100], model(x[i:i + 100], training=True))
                    regularization = tf.add_n(model.losses)
                    total = classification + regularization
                opt.apply_gradients(zip(tape.gradient(total, model.trainable_variables), model.trainable_variables))
                step += 1
                if step % 5 == 0:
                    tf.summary.scalar("Loss/classification_loss", classification, step=step)
                    tf.summary.scalar("Loss/regularization_loss", regularization, step=step)
                    tf.summary.scalar("Loss/total_loss", total, step=step)
    writer.close()
    series = _series_of(tmp_path)
    assert _rise(series, "Loss/regularization_loss") > 3, "the premise: the regulariser grew"
    [run] = diagnose(series)["runs"]
    assert not {f["code"] for f in run["findings"]} & EVENTS, run["findings"]
    [verdict] = [f for f in run["findings"] if f["code"] == run["verdict"]]
    assert verdict["tags"] == ["detector/train:Loss/total_loss"], verdict
    metrics = {s["tag"]: s["metric"] for s in run["series"]}
    assert metrics["Loss/total_loss"] == "loss" and metrics["Loss/classification_loss"] == "classification_loss"


def _memorise_noisy_labels(logdir, loss_tag: str, metric_tags: tuple, as_error: bool, held_out_once: bool = False) -> list:
    """A wide network memorising 30% noisy labels (spirals): the held-out metric gets best, then
    worse, while the training loss still falls. Logs the loss per step and (train, held-out)
    `metric_tags` per epoch, as top-1 error in percent (`as_error`) or accuracy; returns the
    held-out values. `held_out_once`: the held-out metric is logged once, after training (a
    final test score)."""
    torch = pytest.importorskip("torch")
    tb = pytest.importorskip("torch.utils.tensorboard")
    from training_tasks import spirals_task

    torch.manual_seed(0)
    (x, y), (xv, yv) = spirals_task(400, 1000, seed=3, label_noise=0.3)
    x, y, xv, yv = map(torch.from_numpy, (x, y, xv, yv))
    model = torch.nn.Sequential(torch.nn.Linear(2, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 5))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    writer = tb.SummaryWriter(str(logdir))
    step, held_out = 0, []
    for epoch in range(150):
        for idx in torch.randperm(len(x)).split(50):
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            writer.add_scalar(loss_tag, loss.item(), step)
        with torch.no_grad():
            right = [(model(a).argmax(1) == b).float().mean().item() for a, b in ((x, y), (xv, yv))]
        values = [100 * (1 - r) for r in right] if as_error else right
        writer.add_scalar(metric_tags[0], values[0], step)
        if not held_out_once or epoch == 149:
            writer.add_scalar(metric_tags[1], values[1], step)
        held_out.append(values[1])
    writer.close()
    return held_out


def test_an_error_rate_logged_for_both_splits_is_judged_before_a_training_only_loss(tmp_path):
    """pycls / classic ImageNet scripts log the training loss per step and the top-1 error of
    both splits per epoch: the table needs both curves, so the paired error is the primary
    metric. Test error bottoms, then climbs while the training loss still falls (read alone,
    the training loss says `converged`)."""
    test_errors = _memorise_noisy_labels(tmp_path / "resnet_like", "train/loss", ("train/top1_err", "test/top1_err"),
                                         as_error=True)
    assert np.median(test_errors[-10:]) > 1.3 * min(test_errors), "the premise: test error climbed back"
    [run] = diagnose(_series_of(tmp_path))["runs"]
    [verdict] = [f for f in run["findings"] if f["code"] == run["verdict"]]
    assert verdict["tags"] == ["resnet_like:train/top1_err", "resnet_like:test/top1_err"], verdict
    assert run["verdict"] == "overfitting", run["findings"]


def test_an_accuracy_logged_for_both_splits_is_judged_before_a_training_only_loss(tmp_path):
    """A custom loop that logs the training loss per batch and accuracy of both splits per
    epoch, no validation loss: validation accuracy peaks, then falls."""
    accuracy = _memorise_noisy_labels(tmp_path / "custom_loop", "train_loss", ("train_acc", "val_acc"),
                                      as_error=False)
    assert max(accuracy) - np.median(accuracy[-10:]) > 0.03, "the premise: validation accuracy fell back"
    [run] = diagnose(_series_of(tmp_path))["runs"]
    [verdict] = [f for f in run["findings"] if f["code"] == run["verdict"]]
    assert verdict["tags"] == ["custom_loop:train_acc", "custom_loop:val_acc"], verdict
    assert run["verdict"] == "overfitting", run["findings"]
    assert "train_loss" in {s["tag"] for s in run["series"]}  # still read: NaN and blow-up checks


def test_a_test_score_logged_once_does_not_make_its_metric_primary(tmp_path):
    """Training loss per batch, training accuracy per epoch, the test accuracy once at the end
    (Lightning's `trainer.test`): one test point is no curve to compare, so the verdict stays
    the training loss's."""
    _memorise_noisy_labels(tmp_path / "with_test", "train_loss", ("train_acc", "test_acc"), as_error=False,
                           held_out_once=True)
    [run] = diagnose(_series_of(tmp_path))["runs"]
    [verdict] = [f for f in run["findings"] if f["code"] == run["verdict"]]
    assert verdict["tags"] == ["with_test:train_loss"], verdict
