"""Run grouping and train/validation pairing across the common naming conventions."""

import numpy as np
import pytest

from tb_lossdoctor.grouping import group_key, group_series
from tb_lossdoctor.naming import is_learning_rate, parse_tag, split_of_run
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
    # Lightning's LearningRateMonitor logs the other optimiser settings under the same prefix.
    for tag in ("lr-SGD-momentum", "lr-SGD/pg1-momentum", "lr-AdamW-weight_decay", "lr-Adam-beta1"):
        assert not is_learning_rate(tag) and parse_tag(tag).kind == "ignored", tag


def test_curves_that_name_a_metric_but_are_not_learning_curves():
    """Running bests, the loss scale, a loss term's weight (real runs: test_derived_curves.py)."""
    for tag in ("val/acc_best", "valid/best_loss", "min_val_loss", "val_loss_min", "max_acc",
                "loss_scale", "Train/Samples/loss_scale", "amp/grad_scale", "train/kl_weight", "loss_coef"):
        assert parse_tag(tag).kind == "ignored", tag
    for tag in ("weighted_loss", "softmax_loss", "val/loss", "val/acc@1", "epoch_accuracy", "val/scale_invariant_loss"):
        assert parse_tag(tag).kind == "metric", tag


def test_axis_words_are_not_part_of_the_metric():
    """DeepSpeed's `Train/Samples/train_loss`, Megatron's `lm loss vs tokens`: the x axis."""
    meaning = parse_tag("Train/Samples/train_loss")
    assert (meaning.metric, meaning.direction, meaning.role) == ("loss", "min", "train")
    assert parse_tag("lm loss vs tokens").metric == parse_tag("lm-loss-validation/valid lm loss").metric == "lm_loss"
    assert parse_tag("eval/samples_per_second").kind == "ignored"


def test_a_momentum_logged_longer_than_the_learning_rate_is_not_the_learning_rate():
    runs = [series(".", "train_loss", n=300), series(".", "lr-SGD", n=30), series(".", "lr-SGD-momentum", n=300)]
    (group,) = group_series(runs)
    assert group.learning_rate.tag == "lr-SGD"


def test_group_keys():
    assert group_key("a/b/train") == "a/b"
    assert group_key("run1/validation") == "run1"
    assert group_key("train") == "."
    assert group_key("resnet_lr0.1") == "resnet_lr0.1"


def test_only_training_curve_is_kept_alone():
    (group,) = group_series([series("r", "loss")])
    assert group.pairs[0].train is not None and group.pairs[0].val is None


def test_split_suffixed_run_folders_are_splits():
    # PyTorch's add_scalars("Loss", {"train": ..., "val": ...}) writes runs X/Loss_train + X/Loss_val.
    assert split_of_run("exp/Loss_train", ("Loss",)) == ("exp", "train", 0)
    assert split_of_run("exp/Loss_val", ("Loss",))[:2] == ("exp", "val")
    # Estimator's evaluate(name="validation") and custom loops' train_loss/test_loss folders.
    assert split_of_run("model_dir/eval_validation", ("loss",))[:2] == ("model_dir", "val")
    assert split_of_run("x2/test_loss", ("loss", "psnr"))[:2] == ("x2", "val")
    # Another word makes it a run name.
    assert split_of_run("resnet_train", ("loss",)) == ("resnet_train", "", 0)


def test_ultralytics_train_folder_is_a_run_name():
    tags = ("train/box_loss", "val/box_loss", "metrics/mAP50(B)")
    assert split_of_run("runs/detect/train", tags) == ("runs/detect/train", "", 0)
    # Keras' validation folder also holds `evaluation_loss_vs_iterations`: still a split.
    assert split_of_run("m/validation", ("epoch_loss", "evaluation_loss_vs_iterations"))[:2] == ("m", "val")


def test_add_scalars_layout_pairs_train_and_validation():
    groups = group_series([series("exp/Loss_train", "Loss"), series("exp/Loss_val", "Loss")])
    (group,) = groups
    assert group.name == "exp"
    pair = group.pairs[0]
    assert (pair.train.series.run, pair.val.series.run) == ("exp/Loss_train", "exp/Loss_val")


def test_tf1_uniquified_loss_is_the_loss():
    assert parse_tag("loss_1").metric == "loss"
    assert parse_tag("val_loss_2") == parse_tag("val_loss")
    assert parse_tag("metrics/mAP_0.5").metric != parse_tag("metrics/mAP_0.5:0.95").metric


def test_an_evaluation_metric_without_a_split_word_gets_no_role():
    """`metrics/mAP50(B)` or `bbox/AP` is not a training curve: no role rather than a wrong one;
    a loss with no split word is Keras' training loss."""
    groups = group_series([series("r", "metrics/mAP50(B)"), series("r", "bbox/AP"), series("r", "loss")])
    roles = {c.series.tag: c.role for g in groups for c in g.curves}
    assert roles == {"metrics/mAP50(B)": "", "bbox/AP": "", "loss": "train"}


def test_add_hparams_timestamp_folder_belongs_to_its_run():
    """`SummaryWriter.add_hparams` writes `RUN/<time.time()>`: part of RUN, not a run group."""
    assert split_of_run("exp0/1796192711.021009", ("hparam/val_loss",)) == ("exp0", "", 0)
    assert split_of_run("exp0/1796192711", ()) == ("exp0", "", 0)
    assert split_of_run("exp0/42", ()) == ("exp0/42", "", 0)  # a short number is a run name
