"""Run grouping and train/validation pairing across the common naming conventions."""

import numpy as np
import pytest

from tb_lossdoctor.grouping import group_key, group_series
from tb_lossdoctor.naming import is_learning_rate, parse_tag
from tb_lossdoctor.series import make_series


def series(run, tag, n=20, first=0):
    return make_series(run, tag, np.arange(first, first + n), np.linspace(1, 0, n))


@pytest.mark.parametrize(
    "train_tag,val_tag",
    [
        ("Loss/train", "Loss/val"),
        ("loss/train", "loss/validation"),
        ("train/loss", "val/loss"),
        ("train_loss", "val_loss"),
        ("loss", "val_loss"),
        ("Train-Loss", "Valid-Loss"),
        ("training.loss", "eval.loss"),
        ("TRAIN_LOSS", "DEV_LOSS"),
        ("train_loss", "test_loss"),
        ("trainLoss", "valLoss"),
    ],
)
def test_one_folder_conventions_pair(train_tag, val_tag):
    (group,) = group_series([series("run", train_tag), series("run", val_tag)])
    pair = group.pairs[0]
    assert pair.metric == "loss" and pair.direction == "min"
    assert pair.train.series.tag == train_tag
    assert pair.val.series.tag == val_tag


def test_keras_folders_make_one_group_and_pair_same_tag():
    runs = [
        series("exp/train", "epoch_loss"), series("exp/validation", "epoch_loss"),
        series("exp/train", "batch_loss", n=500),
        series("exp/validation", "evaluation_loss_vs_iterations", first=100),
        series("exp/train", "epoch_accuracy"), series("exp/validation", "epoch_accuracy"),
    ]
    (group,) = group_series(runs)
    assert group.name == "exp"
    loss, accuracy = group.pairs
    assert (loss.metric, accuracy.metric) == ("loss", "accuracy")
    assert loss.train.series.tag == "epoch_loss" and loss.val.series.tag == "epoch_loss"
    assert accuracy.direction == "max"


def test_lightning_step_and_epoch_tags():
    runs = [series(".", "train_loss_step", n=300), series(".", "train_loss_epoch", n=30),
            series(".", "val_loss", n=30), series(".", "epoch", n=30), series(".", "hp_metric", n=1),
            series(".", "lr-Adam", n=300)]
    (group,) = group_series(runs)
    assert [p.metric for p in group.pairs] == ["loss"]
    assert group.pairs[0].train.series.tag == "train_loss_epoch"
    assert group.learning_rate.tag == "lr-Adam"
    assert {s.tag for s in group.ignored} == {"epoch", "hp_metric"}


def test_metric_directions():
    for tag in ("nll", "val_mse", "train/perplexity", "error_rate", "cross_entropy", "rmse"):
        assert parse_tag(tag).direction == "min", tag
    for tag in ("acc", "val_accuracy", "f1", "AUC", "top5", "mAP50", "iou", "precision"):
        assert parse_tag(tag).direction == "max", tag
    for tag in ("epoch", "hp_metric", "global_step", "grad_norm", "images"):
        assert parse_tag(tag).kind == "ignored", tag


def test_learning_rate_tags():
    for tag in ("lr", "learning_rate", "lr-Adam", "optim/lr", "LearningRate"):
        assert is_learning_rate(tag) or parse_tag(tag).kind == "lr", tag
    assert not is_learning_rate("clr_loss")


def test_group_keys():
    assert group_key("a/b/train") == "a/b"
    assert group_key("run1/validation") == "run1"
    assert group_key("train") == "."
    assert group_key("resnet_lr0.1") == "resnet_lr0.1"


def test_only_training_curve_is_kept_alone():
    (group,) = group_series([series("r", "loss")])
    assert group.pairs[0].train is not None and group.pairs[0].val is None
