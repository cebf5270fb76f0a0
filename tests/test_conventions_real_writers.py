"""Each naming convention, written by the real writers, read back by both readers, paired.

Writers: TF2 `tf.summary.scalar` (tensor summaries, as Keras' callback writes them) and
torch / tensorboardX style `simple_value` summaries. The curves are an overfitting shape
(training keeps falling, validation turns up), so pairing is checked through the verdict too:
without the validation curve there would be no `overfitting`.
"""

import numpy as np
import pytest

from conftest import SimpleValueWriter, write_tf_scalars
from tb_lossdoctor.engine import diagnose
from tb_lossdoctor.readers.logdir import read_logdir

N = 60
STEPS = np.arange(N)
TRAIN = 0.1 + 2.0 * np.exp(-STEPS / 8.0)
VAL = 0.6 + 1.5 * np.exp(-STEPS / 8.0) + 0.02 * np.clip(STEPS - 20, 0, None)

# (layout, {run folder: {tag: curve}}) — one training run each.
CONVENTIONS = {
    "keras_folders": {"train": {"epoch_loss": TRAIN}, "validation": {"epoch_loss": VAL}},
    "torch_Loss_slash": {".": {"Loss/train": TRAIN, "Loss/val": VAL}},
    "torch_lower_validation": {".": {"loss/train": TRAIN, "loss/validation": VAL}},
    "split_first": {".": {"train/loss": TRAIN, "val/loss": VAL}},
    "underscores": {".": {"train_loss": TRAIN, "val_loss": VAL}},
    "keras_one_folder": {".": {"loss": TRAIN, "val_loss": VAL}},
    "lightning": {".": {"train_loss_step": TRAIN, "val_loss": VAL, "epoch": STEPS / 10.0}},
    "dashes_and_case": {".": {"Train-Loss": TRAIN, "Valid-Loss": VAL}},
    "eval_dots": {".": {"training.loss": TRAIN, "eval.loss": VAL}},
    "accuracy_mirrored": {".": {"train_acc": 1 - TRAIN / 3, "val_acc": 1 - VAL / 3}},
}


def write(root, writer_kind, layout):
    for folder, tags in layout.items():
        path = root / folder
        if writer_kind == "tf":
            for tag, curve in tags.items():
                write_tf_scalars(path, tag, curve)
        else:
            w = SimpleValueWriter(path)
            for tag, curve in tags.items():
                w.add(tag, curve)
            w.close()


@pytest.mark.parametrize("reader", ["server", "python"])
@pytest.mark.parametrize("writer_kind", ["tf", "simple_value"])
def test_conventions_pair_and_diagnose(tmp_path, writer_kind, reader):
    for name, layout in CONVENTIONS.items():
        write(tmp_path / name, writer_kind, layout)
    series, problems, info = read_logdir(str(tmp_path), reader=reader)
    assert info["reader"] == reader and not problems
    runs = {r["run"]: r for r in diagnose(series)["runs"]}
    assert set(runs) == set(CONVENTIONS)
    for name, run in runs.items():
        roles = {s["role"] for s in run["series"] if s["metric"] in ("loss", "accuracy")}
        assert roles == {"train", "val"}, (name, run["series"])
        codes = [f["code"] for f in run["findings"]]
        assert codes == ["overfitting"], (name, codes)
        # The best validation epoch is where the two exponentials balance the linear rise.
        best = int(np.argmin(VAL))
        assert abs(run["findings"][0]["step"] - best) <= 3, (name, run["findings"][0]["step"], best)
