"""Curves that name a metric without being learning curves, from a real mixed-precision run.

A small network trained with PyTorch's automatic mixed precision (float16 autocast and a real
`GradScaler`, on CPU) logs, through `torch.utils.tensorboard.SummaryWriter`, what such scripts
log: the losses, timm's `acc@1`, the loss scale (fairseq and DeepSpeed log `loss_scale`) and the
best validation accuracy so far (`val/acc_best`, as the Lightning-Hydra template does). The loss
scale jumps by factors of 2 by design (halved on each overflow, doubled after a quiet stretch):
read as a loss, it "blows up". The running best is flat by construction once the metric stops
improving. Neither may be diagnosed; `acc@1` is validation accuracy and pairs with training's.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
tb = pytest.importorskip("torch.utils.tensorboard")

from tb_lossdoctor.engine import diagnose  # noqa: E402
from tb_lossdoctor.readers.logdir import read_logdir  # noqa: E402
from training_tasks import teacher_task  # noqa: E402

EPOCHS = 30
DERIVED = {"train/loss_scale", "val/acc_best"}


def _train_with_amp(logdir) -> list:
    """Train with float16 autocast and a GradScaler; returns the loss scale at each step."""
    torch.manual_seed(0)
    (x, y), (xv, yv) = teacher_task(2000, 500, heavy_sigma=0.5)
    x, y, xv, yv = map(torch.from_numpy, (x, y, xv, yv))
    model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    # A large first scale and a short growth interval: the scale overflows, halves and grows
    # again within a short run, as it does over a long one.
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 24, growth_interval=20)
    writer = tb.SummaryWriter(str(logdir))
    scales, best, step = [], 0.0, 0
    for epoch in range(EPOCHS):
        for i in range(0, len(x), 100):
            with torch.autocast("cpu", dtype=torch.float16):
                loss = torch.nn.functional.cross_entropy(model(x[i:i + 100]), y[i:i + 100])
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            step += 1
            scales.append(scaler.get_scale())
            writer.add_scalar("train/loss", loss.item(), step)
            writer.add_scalar("train/loss_scale", scales[-1], step)
        with torch.no_grad():
            logits = model(xv).float()
            val_loss = torch.nn.functional.cross_entropy(logits, yv).item()
            acc = (logits.argmax(1) == yv).float().mean().item()
        best = max(best, acc)
        writer.add_scalar("val/loss", val_loss, step)
        writer.add_scalar("val/acc@1", acc, step)
        writer.add_scalar("val/acc_best", best, step)
    writer.close()
    return scales


@pytest.fixture(scope="module")
def amp_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("amp") / "amp_run"
    scales = _train_with_amp(logdir)
    return logdir, scales


def test_the_real_loss_scale_jumps_by_powers_of_two(amp_run):
    """The premise: the scaler halved and doubled its scale during the run."""
    _, scales = amp_run
    ratios = {round(math.log2(b / a)) for a, b in zip(scales, scales[1:]) if b != a}
    assert {-1, 1} <= ratios, sorted(ratios)
    assert max(scales) / min(scales) >= 4


@pytest.mark.parametrize("reader", ["server", "python"])
def test_derived_curves_are_not_diagnosed_and_acc_at_1_pairs(amp_run, reader):
    logdir, _ = amp_run
    series, problems, info = read_logdir(str(logdir), reader=reader)
    assert info["reader"] == reader and not problems
    assert DERIVED <= {s.tag for s in series}, "the writer wrote them"
    [run] = diagnose(series)["runs"]
    diagnosed = {s["tag"] for s in run["series"]}
    assert not DERIVED & diagnosed, run["series"]
    for finding in run["findings"]:
        assert not {t.split(":", 1)[1] for t in finding["tags"]} & DERIVED, finding
    accuracy = {s["role"] for s in run["series"] if s["tag"] in ("val/acc@1",)}
    assert accuracy == {"val"} and "val/loss" in diagnosed and "train/loss" in diagnosed
    codes = {f["code"] for f in run["findings"]}
    assert not codes & {"blowup", "diverging", "nan", "not_learning", "oscillation"}, run["findings"]
    # The verdict is the loss curves' (this small task overfits: validation loss turns up
    # after a third of the run while training falls), decided as it would be without them.
    alone = diagnose([s for s in series if s.tag not in DERIVED])["runs"][0]
    assert run["verdict"] == alone["verdict"] and codes == {f["code"] for f in alone["findings"]}

