"""Lightning's names for several validation sets, written by a real Lightning run.

With two validation dataloaders, Lightning logs `val_loss/dataloader_idx_0` and
`val_loss/dataloader_idx_1`: both are the validation loss, of two sets. The first set's curve
pairs with `train_loss`, so the train/validation table reads the run.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")

from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from tb_lossdoctor.engine import diagnose  # noqa: E402
from tb_lossdoctor.readers.logdir import read_logdir  # noqa: E402
from training_tasks import teacher_task  # noqa: E402


class TwoValidationSets(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def test_two_validation_sets_pair_the_first_with_training(tmp_path):
    torch.manual_seed(0)
    (x, y), (xv, yv) = teacher_task(1500, 600, heavy_sigma=0.5)
    train = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=100, shuffle=True)
    val = [DataLoader(TensorDataset(torch.from_numpy(xv[i::2]), torch.from_numpy(yv[i::2])), batch_size=300)
           for i in range(2)]
    trainer = L.Trainer(max_epochs=12, logger=TensorBoardLogger(str(tmp_path), name="two_sets"),
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(TwoValidationSets(), train, val)
    series, problems, _ = read_logdir(str(tmp_path))
    tags = {s.tag for s in series}
    assert {"val_loss/dataloader_idx_0", "val_loss/dataloader_idx_1", "train_loss"} <= tags, tags
    [run] = diagnose(series, problems=problems)["runs"]
    roles = {s["tag"]: (s["role"], s["metric"]) for s in run["series"]}
    assert roles["train_loss"] == ("train", "loss") and roles["val_loss/dataloader_idx_0"] == ("val", "loss"), roles
    [verdict] = [f for f in run["findings"] if f["code"] == run["verdict"]]
    assert [t.split(":", 1)[1] for t in verdict["tags"]] == ["train_loss", "val_loss/dataloader_idx_0"], verdict
