"""Across runs on sweeps written by the real writers people use: PyTorch's
`SummaryWriter.add_hparams` (which writes into a `RUN/<time.time()>` sub-folder) and Lightning's
`TensorBoardLogger.log_hyperparams` (`hp_metric`), each around a real, tiny torch training.

The runs are named without their settings (`exp0`, `version_3`), so everything the sweep says
comes from the HParams records, read through TensorBoard by both CLI readers. Skips when torch
(or Lightning) is not installed.

The training: linear regression (8 standardised features), SGD with momentum 0.9, 200 steps of
32. At lr <= 0.1 the loss falls from 9.5 to about 0.1; at lr 0.5 it climbs to 1e7, at 1.0 and
1.5 it overflows to inf and NaN (checked by hand before writing the assertions).
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from tb_lossdoctor import cli
from tb_lossdoctor.sweep import is_failure

LRS = [0.001, 0.01, 0.1, 0.5, 1.0, 1.5]


def train(lr: float, log) -> float:
    """A real torch training; `log(tag, value, step)` writes a point. Returns the last val loss."""
    import torch

    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(512, 8, generator=g), torch.randn(8, 1, generator=g)
    y = x @ w + 0.3 * torch.randn(512, 1, generator=g)
    xv = torch.randn(256, 8, generator=g)
    yv = xv @ w + 0.3 * torch.randn(256, 1, generator=g)
    torch.manual_seed(1)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    val = float("nan")
    for step in range(1, 201):
        i = torch.randint(0, 512, (32,))
        loss = torch.nn.functional.mse_loss(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        log("train_loss", loss.item(), step)
        if step % 20 == 0:
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(model(xv), yv).item()
            log("val_loss", val, step)
    return val


def report(logdir, reader):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main([str(logdir), "--format", "json", "--reader", reader]) == 0
    return json.loads(out.getvalue())


def check_lr_split(rep, runs):
    """Every run at lr >= 0.5 diverged, blew up or went NaN; none at lr <= 0.1 did."""
    by_run = {r["run"]: r for r in rep["runs"]}
    for run, lr in zip(runs, LRS):
        assert by_run[run]["hparams"]["lr"] == lr and by_run[run]["hparam_sources"]["lr"] == "hparams"
    sweep = rep["sweep"]
    assert [sorted(f["runs"]) for f in sweep["families"]] == [sorted(runs)]
    split = next(f for f in sweep["findings"] if f["text"].startswith("All 3 runs with lr >= 0.5 "))
    assert sorted(split["matching"]) == sorted(runs[3:]) and sorted(split["runs"]) == sorted(runs)
    assert split["text"].split(";")[1].startswith(" none of the 3 with lr <= 0.1 did.")
    # lr 1.0 and 1.5 end in NaN; the engine reads lr 0.5's runaway (9.5 -> 1e7, swinging on the
    # way) as oscillation: the cut is then described as "failed", with the codes behind it.
    assert "nan" in split["codes"] and all(is_failure(c) for c in split["codes"])
    return split


@pytest.mark.parametrize("reader", ["server", "python"])
def test_pytorch_add_hparams(tmp_path, reader):
    tensorboard_writer = pytest.importorskip("torch.utils.tensorboard")
    runs = []
    for i, lr in enumerate(LRS):
        writer = tensorboard_writer.SummaryWriter(log_dir=str(tmp_path / f"exp{i}"))
        final = train(lr, lambda tag, v, step: writer.add_scalar(tag.replace("_loss", "/loss"), v, step))
        writer.add_hparams({"lr": lr, "momentum": 0.9}, {"hparam/val_loss": final})
        writer.close()
        runs.append(f"exp{i}")
    rep = report(tmp_path, reader)
    check_lr_split(rep, runs)
    # The timestamped folders add_hparams wrote belong to their runs: no run group of their own.
    assert [r["run"] for r in rep["runs"] if r["run"].count("/") == 1] == []
    assert set(runs) <= {r["run"] for r in rep["sweep"]["runs"]}


@pytest.mark.parametrize("reader", ["server", "python"])
def test_lightning_log_hyperparams(tmp_path, reader):
    pytest.importorskip("torch")
    loggers = pytest.importorskip("lightning.pytorch.loggers")
    runs = []
    for i, lr in enumerate(LRS):
        logger = loggers.TensorBoardLogger(str(tmp_path), name="lit", version=i)
        logger.log_hyperparams({"lr": lr, "batch_size": 32}, metrics={"hp_metric": -1})
        train(lr, lambda tag, v, step: logger.log_metrics({tag: v}, step=step))
        logger.finalize("success")
        runs.append(f"lit/version_{i}")
    split = check_lr_split(report(tmp_path, reader), runs)
    assert split["confounded_with"] == []
