"""What run names, HParams records and learning-rate curves say about a run's hyperparameters."""

from __future__ import annotations

import numpy as np
import pytest

from tb_lossdoctor.hparams import (
    assign_records,
    canonical_key,
    format_value,
    free_word_hparams,
    is_record_child,
    lr_curve_hparams,
    merge,
    name_hparams,
    number,
    parse_name,
)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("lr=0.01", {"lr": 0.01}),
        ("lr_1e-3", {"lr": 0.001}),
        ("lr1e-4", {"lr": 0.0001}),
        ("bs32", {"batch_size": 32.0}),
        ("dropout0.5", {"dropout": 0.5}),
        ("seed_3", {"seed": 3.0}),
        ("Adam-Depth=4-Filter=48", {"optimizer": "Adam", "depth": 4.0, "filters": 48.0}),
        ("SGD+Mom-Depth=2-Filter=12", {"optimizer": "SGD+Mom", "depth": 2.0, "filters": 12.0}),
        ("tf_lena_SGD_Mom-Depth2-Filter12", {"optimizer": "SGD+Mom", "depth": 2.0, "filters": 12.0}),
        ("SGD_Momentum-0.9", {"optimizer": "SGD", "momentum": 0.9}),
        ("learning_rate=0.01_batch_size=64", {"lr": 0.01, "batch_size": 64.0}),
        ("wd=5e-4,opt=adamw", {"weight_decay": 0.0005, "optimizer": "AdamW"}),
        ("100epochs_lr1e-4", {"epochs": 100.0, "lr": 0.0001}),
        ("steps10k", {"steps": 10000.0}),
        ("n1024_k8_sigma10_photonstarved", {"n": 1024.0, "k": 8.0, "sigma": 10.0}),
        ("sweep/resnet50_lr=0.1_relu", {"lr": 0.1, "activation": "ReLU"}),
    ],
)
def test_names_state_settings(name, expected):
    assert parse_name(name).values == expected


@pytest.mark.parametrize(
    "name",
    ["resnet50", "yolov8", "exp2", "run1", "version_3", "Run-2", "lightning_logs/version_0",
     "Aug/20221210-192125", "run-20230101_123456-abc123de", "sweep-2024-05", "resnet_50",
     "healthy_torchstyle", "nan_softmax_high_lr", "lr_too_low", "blowup_after_warmup", "x2"],
)
def test_names_that_state_no_setting(name):
    """Model names, identifiers, timestamps, dates and hashes are not settings."""
    assert parse_name(name).values == {}


def test_numbers_with_exponents_and_units():
    assert number("1e-3") == 0.001 and number("5E-4") == 0.0005 and number("10k") == 10000.0
    assert number("1M") == 1e6 and number(".5") == 0.5 and number("abc") is None


def test_canonical_keys():
    assert canonical_key("Learning_Rate") == "lr" and canonical_key("BatchSize") == "batch_size"
    assert canonical_key("Depth") == "depth" and canonical_key("dataset/sigma") == "dataset/sigma"


def test_free_words_become_a_variant_or_a_flag_only_in_a_designed_set():
    hw06 = ["tf_hw06_Aug", "tf_hw06_DenseMode", "tf_hw06_L2", "tf_hw06_Original"]
    assert free_word_hparams(hw06) == {n: {"variant": n.split("_")[-1]} for n in hw06}
    cowsip = ["pl_cowsip_sigma10_starved", "pl_cowsip_sigma30", "pl_cowsip_sigma30_starved"]
    assert name_hparams(cowsip) == {
        "pl_cowsip_sigma10_starved": {"sigma": 10.0, "starved": True},
        "pl_cowsip_sigma30": {"sigma": 30.0, "starved": False},
        "pl_cowsip_sigma30_starved": {"sigma": 30.0, "starved": True},
    }
    # No shared stem (unrelated runs), several words left per name, or a single name: nothing.
    assert free_word_hparams(["healthy", "overfitting", "diverging"]) == {}
    assert free_word_hparams(["exp_big_model", "exp_small_data"]) == {}
    assert free_word_hparams(["tf_hw06_Aug"]) == {}


def test_records_attach_to_their_run_group():
    groups = ["lr0.1", "lr0.01", "keras/run_a"]
    records = {
        "lr0.1/1701234567.891": {"lr": 0.1},  # add_hparams' timestamped sub-folder
        "lr0.01": {"lr": 0.01},  # Lightning / hp.hparams in the run itself
        "keras/run_a/train": {"optimizer": "adam"},  # in a split folder of the group
        "elsewhere": {"lr": 1.0},  # no group: dropped
    }
    assert assign_records(records, groups) == {
        "lr0.1": {"lr": 0.1}, "lr0.01": {"lr": 0.01}, "keras/run_a": {"optimizer": "adam"}}
    assert is_record_child("lr0.1/1701234567.891", groups + ["lr0.1/1701234567.891"])
    assert not is_record_child("lr0.1/seed_3", groups)


def test_learning_rate_curve():
    steps = np.arange(0, 1000, 10)
    warm = np.minimum(1.0, (steps + 10) / 200.0) * 0.1 * np.where(steps > 500, 0.5, 1.0)
    assert lr_curve_hparams(steps, warm) == {"peak_lr": 0.1, "final_lr": 0.05, "warmup_steps": 190.0}
    flat = np.full(steps.size, 1e-3, dtype=np.float32)
    assert lr_curve_hparams(steps, flat) == {"peak_lr": 0.001, "final_lr": 0.001, "warmup_steps": 0.0}
    assert lr_curve_hparams(steps, np.full(steps.size, np.nan)) == {}


def test_merge_prefers_records_then_names_then_curves():
    values, sources = merge(("hparams", {"learning_rate": 0.1}), ("name", {"lr": 0.2, "bs": 8}),
                            ("lr_curve", {"peak_lr": 0.1}))
    assert values == {"lr": 0.1, "batch_size": 8, "peak_lr": 0.1}
    assert sources == {"lr": "hparams", "batch_size": "name", "peak_lr": "lr_curve"}


def test_values_print_the_same_everywhere():
    assert [format_value(v) for v in (0.001, 32.0, "Adam", True, False, 1e-5)] == \
        ["0.001", "32", "Adam", "yes", "no", "1e-05"]


def test_hparams_record_values_come_in_name_order_whatever_the_protobuf_map_order():
    """A protobuf map's iteration order differs between processes (and with insertion order),
    so a report built from it would differ between two TensorBoard starts on the same logdir
    (and its ETag with it)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    from tb_lossdoctor.hparams import record_values

    def record(order):
        info = plugin_data_pb2.SessionStartInfo()
        for name in order:
            info.hparams[name].number_value = float(len(name))
        return record_values(info.hparams)

    orders = [["lr", "batch", "depth"], ["depth", "lr", "batch"], ["batch", "depth", "lr"]]
    assert {tuple(record(o).items()) for o in orders} == {(("batch", 5.0), ("depth", 5.0), ("lr", 2.0))}
