"""The classes of misses found on held-out runs (issue: verdicts that hold on runs nobody tuned
them to), each on constructed curves whose shape is the class and whose noise is random.

Each test is one shape under many noise seeds: a verdict that depends on the seed is a coin toss.
"""

import numpy as np
import pytest

from tb_lossdoctor.engine import diagnose
from tb_lossdoctor.series import make_series

EPOCHS = np.arange(40)
SEEDS = range(20)


def epochs(curve, seed, noise, epochs=EPOCHS):
    rng = np.random.default_rng(seed)
    return curve + noise * rng.standard_normal(epochs.size)


def verdict(series):
    (run,) = diagnose(series)["runs"]
    assert not [p for p in diagnose(series)["problems"] if "diagnosis failed" in p["reason"]]
    return run


def keras_pair(train, val, steps=EPOCHS, tag="epoch_loss"):
    return [make_series("m/train", tag, steps, train), make_series("m/validation", tag, steps, val)]


# 1. Train falling, validation flat: overfitting (the gap widens), whatever the noise seed.


@pytest.mark.parametrize("seed", SEEDS)
def test_train_falls_while_validation_stays_flat_is_overfitting(seed):
    train = 0.47 + 1.73 * np.exp(-EPOCHS / 12)
    val = np.full(EPOCHS.size, 1.5)
    run = verdict(keras_pair(epochs(train, seed, 0.01), epochs(val, seed + 100, 0.03)))
    assert run["verdict"] == "overfitting", [f["summary"] for f in run["findings"]]
    assert run["status"] == "warning"


@pytest.mark.parametrize("seed", SEEDS)
def test_training_with_missing_epochs_is_still_compared_with_validation(seed):
    """15 epochs; training was not logged at epochs 11 and 12, so the recent window holds fewer
    training points than validation ones. The window is widened for both curves: training
    falling while validation sits flat is still overfitting (not "read the training curve
    alone: still learning")."""
    rng = np.random.default_rng(seed)
    e = np.arange(15)
    train = 0.6 + 1.3 * np.exp(-e / 6) + 0.004 * rng.standard_normal(15)
    val = 0.98 + 0.7 * np.exp(-e / 2.5) + 0.01 * rng.standard_normal(15)
    logged = ~np.isin(e, (11, 12))
    run = verdict([make_series("m/train", "epoch_loss", e[logged], train[logged]),
                   make_series("m/validation", "epoch_loss", e, val)])
    assert run["verdict"] == "overfitting", [f["summary"] for f in run["findings"]]


@pytest.mark.parametrize("seed", SEEDS)
def test_both_falling_together_is_still_learning(seed):
    train = 0.3 + 2.0 * np.exp(-EPOCHS / 30)
    run = verdict(keras_pair(epochs(train, seed, 0.01), epochs(train + 0.1, seed + 100, 0.02)))
    assert run["verdict"] == "still_learning", [f["summary"] for f in run["findings"]]


@pytest.mark.parametrize("seed", SEEDS)
def test_validation_too_noisy_to_tell_over_the_last_epochs_is_read_over_more(seed):
    """15 epochs, both curves fall together (same time constant); validation is noisy, so over
    the last six epochs it can read flat or falling by chance. A window that cannot tell "flat"
    from "keeping pace" is widened until it can: still learning, whatever the seed (not
    "converged" over a flat-looking patch of noise)."""
    e = np.arange(15)
    train = 0.5 + 1.3 * np.exp(-e / 6)
    val = 0.6 + 1.1 * np.exp(-e / 6)
    run = verdict([make_series("m/train", "epoch_loss", e, epochs(train, seed, 0.004, e)),
                   make_series("m/validation", "epoch_loss", e, epochs(val, seed + 100, 0.03, e))])
    assert run["verdict"] == "still_learning", [f["summary"] for f in run["findings"]]
    (finding,) = [f for f in run["findings"] if f["code"] == "still_learning"]
    window = finding["evidence"]["window"]  # the sentence quotes both curves over that window
    assert window["train_change"] < 0 and f"since step {window['start']}" in finding["summary"].lower()


@pytest.mark.parametrize("seed", SEEDS)
def test_quiet_validation_that_stopped_following_training_is_never_still_learning(seed):
    """Validation learned, then sat flat (quietly) over the last half while training kept
    falling: a widened window must not dig up the early fall both shared."""
    train = 0.3 + 2.0 * np.exp(-EPOCHS / 15)
    val = 0.9 + 1.4 * np.exp(-EPOCHS / 4)
    run = verdict(keras_pair(epochs(train, seed, 0.005), epochs(val, seed + 100, 0.005)))
    assert run["verdict"] in ("overfitting", "converged"), [f["summary"] for f in run["findings"]]


@pytest.mark.parametrize("seed", SEEDS)
def test_validation_below_training_and_flat_is_not_overfitting(seed):
    """Dropout/augmentation keep training above validation: training catching up is no gap."""
    train = 0.9 + 1.5 * np.exp(-EPOCHS / 15)
    val = 0.4 + 0.6 * np.exp(-EPOCHS / 4)
    run = verdict(keras_pair(epochs(train, seed, 0.005), epochs(val, seed + 100, 0.005)))
    assert run["verdict"] != "overfitting"


def test_converged_never_says_a_falling_training_curve_flattened():
    """Training (above validation: dropout) still falls by 0.12 over the last 12 epochs, 20x its
    noise; validation has been flat for 30 epochs. The sentence may say validation flattened,
    never that training did."""
    train = 0.9 + 1.5 * np.exp(-EPOCHS / 15)
    val = 0.4 + 0.6 * np.exp(-EPOCHS / 4)
    run = verdict(keras_pair(epochs(train, 0, 0.005), epochs(val, 100, 0.005)))
    assert run["verdict"] == "converged"
    summary = run["findings"][-1]["summary"]
    assert "training loss flattened" not in summary
    assert "validation loss flattened" in summary and "training loss still creeps down" in summary


# 2. Chance level.


def test_loss_pinned_at_ln_k_is_not_learning_with_the_chance_level():
    for classes in (2, 3, 10, 100):
        level = np.log(classes)
        run = verdict(keras_pair(epochs(np.full(40, level), 0, 1e-4), epochs(np.full(40, level), 1, 1e-4)))
        finding = next(f for f in run["findings"] if f["code"] == "not_learning")
        assert finding["evidence"]["chance_level"]["classes"] == classes
        assert f"ln {classes}" in finding["summary"]


def test_loss_that_drifts_at_chance_is_still_not_learning():
    """ln 10 drifting down in the fourth decimal: significant by noise, still chance."""
    drift = np.log(10) - 0.0004 * EPOCHS / 40
    acc = np.full(40, 0.1)
    series = keras_pair(drift, drift + 1e-4) + keras_pair(acc, acc, tag="epoch_accuracy")
    run = verdict(series)
    assert run["verdict"] == "not_learning"


def test_accuracy_must_agree_on_the_number_of_classes():
    """A linear model on 5 spirals: loss 1.372 (1% from ln 4) but accuracy 0.30, not 1/4."""
    loss = 1.372 + 0.1 * np.exp(-EPOCHS)
    acc = 0.30 - 0.01 * np.exp(-EPOCHS)
    run = verdict(keras_pair(loss, loss + 0.001) + keras_pair(acc, acc, tag="epoch_accuracy"))
    assert all("chance_level" not in f["evidence"] for f in run["findings"])


def test_loss_far_from_chance_is_not_called_chance():
    train = 0.69 * np.exp(-EPOCHS / 10) + 0.05
    run = verdict(keras_pair(train, train + 0.02))
    assert run["verdict"] in ("converged", "still_learning")
    assert all("chance_level" not in f["evidence"] for f in run["findings"])


@pytest.mark.parametrize("seed", range(8))
def test_never_learning_while_validation_jumps_around_is_oscillation(seed):
    """Too high a learning rate: per-step training noise, validation bouncing by a fifth of its
    level from one evaluation to the next, neither improving: not a dead network."""
    rng = np.random.default_rng(seed)
    steps = np.arange(5, 2001, 5)
    train = 1.3 + 0.27 * rng.standard_normal(steps.size)
    val_steps = np.arange(100, 2001, 100)
    val = 1.2 + 0.25 * rng.standard_normal(val_steps.size)
    run = verdict([make_series("r", "train_loss", steps, train), make_series("r", "val_loss", val_steps, val)])
    assert run["verdict"] == "oscillation"


# 3. A warning event does not silence the verdict.


def test_converged_run_with_spikes_says_both():
    rng = np.random.default_rng(0)
    steps = np.arange(3000)
    loss = (0.2 + 2 * np.exp(-steps / 300)) * (1 + 0.02 * rng.standard_normal(steps.size))
    loss[[1200, 2100, 2600]] = 5.0
    run = verdict([make_series("r", "train_loss", steps, loss)])
    codes = [f["code"] for f in run["findings"]]
    assert run["verdict"] == "converged" and "spikes" in codes
    assert run["status"] == "warning"


# 4. Flat after improving, at a level far from zero, is converged (no evidence of a poor level).


@pytest.mark.parametrize("seed", SEEDS)
def test_flat_above_zero_after_learning_is_converged(seed):
    """A regression MAE or a detector's box loss: its floor is well above zero."""
    train = 0.55 + 0.4 * np.exp(-EPOCHS / 4)
    val = 0.6 + 0.35 * np.exp(-EPOCHS / 4)
    run = verdict(keras_pair(epochs(train, seed, 0.003), epochs(val, seed + 100, 0.004)))
    assert run["verdict"] == "converged", [f["summary"] for f in run["findings"]]


def test_flat_after_learning_next_to_nothing_is_a_plateau():
    """Validation went 46 -> 44.6 (3% of its way to zero) and stayed: a poor level."""
    train = 44.5 + 1.5 * np.exp(-EPOCHS / 3)
    val = 44.6 + 1.4 * np.exp(-EPOCHS / 3)
    run = verdict(keras_pair(epochs(train, 0, 0.05), epochs(val, 1, 0.05)))
    assert run["verdict"] == "plateau"


# 5. Per-step minibatch noise around a steady curve is not oscillation.


@pytest.mark.parametrize("seed", range(8))
def test_minibatch_noise_around_a_steady_curve_is_not_oscillation(seed):
    rng = np.random.default_rng(seed)
    steps = np.arange(10000)
    smooth = 45 + 100 * np.exp(-steps / 50)
    per_step = smooth * (1 + 0.25 * rng.standard_normal(steps.size))
    val_steps = np.arange(250, 10000, 250)
    val = 44.6 + 0.05 * rng.standard_normal(val_steps.size)
    run = verdict([make_series("r", "train_loss", steps, per_step), make_series("r", "val_loss", val_steps, val)])
    assert run["verdict"] != "oscillation"


@pytest.mark.parametrize("seed", range(8))
def test_heavy_minibatch_noise_after_a_drop_in_the_first_steps_is_not_oscillation(seed):
    """A per-step loss that dropped within its first steps, then crept 50 -> 46 under 15%
    minibatch noise: its bin medians of a dozen points keep a third of that noise, which is no
    swing of the trend, however small the creep it is compared with."""
    rng = np.random.default_rng(seed)
    steps = np.arange(9, 10000, 20)
    level = 50 - 4 * steps / 10000 + 100 * np.exp(-(steps - 9) / 5.0)
    per_step = level * (1 + 0.15 * rng.standard_normal(steps.size))
    val_steps = np.arange(259, 10000, 520)
    val = 44.6 + 0.05 * rng.standard_normal(val_steps.size)
    run = verdict([make_series("r", "train_loss", steps, per_step), make_series("r", "val_loss", val_steps, val)])
    assert run["verdict"] != "oscillation", [f["summary"] for f in run["findings"]]


# 6. Training flat while validation falls is a data problem, however much training fell early.


def test_training_flat_after_an_early_drop_while_validation_falls():
    rng = np.random.default_rng(0)
    train = 1.5 + 1.0 * np.exp(-EPOCHS / 2) + 0.003 * rng.standard_normal(40)
    val = 0.3 + 0.8 * np.exp(-EPOCHS / 25) + 0.003 * rng.standard_normal(40)
    run = verdict(keras_pair(train, val))
    assert run["verdict"] == "data_problem"


# 7. Sparse validation.


def test_sparse_validation_that_rose_is_not_a_clean_bill_of_health():
    """Four evaluations; the last three 40-60% above the best: say so, with lower confidence."""
    steps = np.arange(0, 8001, 50)
    train = 0.1 + 2 * np.exp(-steps / 1500)
    val_steps = np.array([2000, 4000, 6000, 8000])
    val = np.array([0.50, 0.42, 0.60, 0.65])
    run = verdict([make_series("r", "train/loss", steps, train), make_series("r", "val/loss", val_steps, val)])
    assert run["verdict"] == "overfitting"
    finding = next(f for f in run["findings"] if f["code"] == "overfitting")
    assert finding["step"] == 4000 and finding["confidence"] < 0.8
    assert "evaluation" in finding["summary"]


def test_one_validation_point_does_not_make_a_long_run_too_early():
    steps = np.arange(125)
    train = 0.2 + 2 * np.exp(-steps / 20)
    run = verdict([make_series("r", "train_loss", steps, train), make_series("r", "val_loss", [124], [0.25])])
    assert run["verdict"] == "converged"


# 8. A secondary metric NaN by construction is not a training failure.


def test_secondary_metric_nan_at_every_point_is_not_nan():
    train = 0.2 + 2 * np.exp(-EPOCHS / 8)
    series = keras_pair(train, train + 0.05) + [make_series("m/validation", "bbox/APm", EPOCHS, np.full(40, np.nan))]
    run = verdict(series)
    assert "nan" not in [f["code"] for f in run["findings"]] and run["verdict"] == "converged"


def test_one_nan_in_a_long_healthy_run_masks_not_truncates():
    steps = np.arange(10000)
    loss = 0.2 + 2 * np.exp(-steps / 1000)
    loss[5] = np.nan
    run = verdict([make_series("r", "loss", steps, loss)])
    nan = next(f for f in run["findings"] if f["code"] == "nan")
    assert run["verdict"] == "converged"
    assert "1 of its 10,000 points" in nan["summary"]


# 9. Sentences state what the decision checked.


def test_overfitting_on_a_flat_validation_curve_does_not_claim_validation_rose():
    train = 0.47 + 1.73 * np.exp(-EPOCHS / 12)
    run = verdict(keras_pair(epochs(train, 0, 0.01), epochs(np.full(40, 1.5), 1, 0.03)))
    finding = next(f for f in run["findings"] if f["code"] == "overfitting")
    assert "gap" in finding["summary"] and "risen" not in finding["summary"]


def test_converged_summary_quotes_both_curves():
    train = 0.3 + 2 * np.exp(-EPOCHS / 4)
    run = verdict(keras_pair(train, train + 0.1))
    finding = next(f for f in run["findings"] if f["code"] == "converged")
    assert "training loss" in finding["summary"] and "validation loss" in finding["summary"]
    assert "0.4" in finding["summary"]  # validation's end level, 0.3 + 0.1


def test_broad_spike_over_a_few_epochs_that_recovers_is_an_event():
    """One bad learning-rate restart: three epochs far above the curve, then back on it."""
    loss = 0.2 + 2 * np.exp(-EPOCHS / 6)
    loss[20:23] += np.array([1.5, 3.0, 1.0])
    run = verdict([make_series("r", "epoch_loss", EPOCHS, loss)])
    spikes = next(f for f in run["findings"] if f["code"] == "spikes")
    assert spikes["step"] == 21 and run["verdict"] == "converged"


def test_a_rise_that_stays_is_not_a_spike():
    loss = 0.2 + 2 * np.exp(-EPOCHS / 6)
    loss[30:] += 2.0
    run = verdict([make_series("r", "epoch_loss", EPOCHS, loss)])
    assert "spikes" not in [f["code"] for f in run["findings"]]


# Guards found by the mutation check (benchmarks/mutants.py): each test fails when its guard goes.


def test_one_uptick_after_the_best_is_not_overfitting():
    """Patience: both curves fall steadily, then one evaluation jumps; that is not a trend yet."""
    train = 0.2 + 2 * np.exp(-EPOCHS / 20)
    val = 0.3 + 2 * np.exp(-EPOCHS / 20)
    val[-1] *= 1.3
    run = verdict(keras_pair(train, val))
    assert run["verdict"] == "still_learning", [f["summary"] for f in run["findings"]]


def test_a_jump_at_the_very_end_is_not_a_spike_yet():
    """It has not come back (it may be the start of a blow-up): not a transient spike."""
    steps = np.arange(2000)
    loss = 0.2 + 2 * np.exp(-steps / 300)
    loss[-10:] += 3.0
    run = verdict([make_series("r", "train_loss", steps, loss)])
    assert "spikes" not in [f["code"] for f in run["findings"]]


def test_a_curve_that_keeps_coming_back_down_did_not_blow_up():
    steps = np.arange(400)
    loss = 0.3 + 2 * np.exp(-steps / 20) + 0.0005 * steps  # its best level is before the first jump
    high = ((steps >= 150) & (steps < 200)) | ((steps >= 260) & (steps < 300)) | (steps >= 360)
    loss[high] += 2.0
    run = verdict([make_series("r", "train_loss", steps, loss)])
    assert "blowup" not in [f["code"] for f in run["findings"]]


@pytest.mark.parametrize("seed", range(6))
def test_validation_lagging_within_its_noise_is_not_overfitting(seed):
    """Over the last epochs validation falls about half as fast as training, but its epoch to
    epoch noise is as large as the difference: no evidence that the gap widens."""
    train = 0.4 + 2 * np.exp(-EPOCHS / 15)
    val = 0.9 + 1.2 * np.exp(-EPOCHS / 15)
    run = verdict(keras_pair(epochs(train, seed, 0.002), epochs(val, seed + 50, 0.06)))
    assert run["verdict"] != "overfitting", [f["summary"] for f in run["findings"]]


@pytest.mark.parametrize("seed", range(10))
def test_heavy_tailed_noise_on_a_flat_curve_is_no_trend(seed):
    """Rare wild points (a bad batch now and then) must not make a trend: the rank test and
    the robust slope both have to agree."""
    rng = np.random.default_rng(seed)
    steps = np.arange(2000)
    loss = 0.5 + 0.02 * rng.standard_t(1.5, steps.size)
    val_steps = np.arange(99, 2000, 100)
    val = 0.55 + 0.02 * rng.standard_t(1.5, val_steps.size)
    run = verdict([make_series("r", "train_loss", steps, loss), make_series("r", "val_loss", val_steps, val)])
    assert run["verdict"] in ("not_learning", "converged", "plateau", "oscillation"), [f["summary"] for f in run["findings"]]


def test_confidence_grows_with_the_evidence():
    """Confidence is computed from the evidence (effect against noise, points behind it), not
    a constant per code: the same overfitting shape is surer with less noise and more epochs."""
    def confidence(noise, epochs):
        steps = np.arange(epochs)
        train = 0.1 + 2 * np.exp(-steps / (epochs / 8))
        val = 0.6 + 0.8 * np.exp(-steps / (epochs / 8)) + 0.6 * np.clip(steps / epochs - 0.5, 0, None)
        run = verdict(keras_pair(epochs_noise(train, 0, 0.002, steps), epochs_noise(val, 1, noise, steps), steps))
        (finding,) = [f for f in run["findings"] if f["code"] == "overfitting"]
        assert 0.0 <= finding["confidence"] <= 1.0
        return finding["confidence"]

    assert confidence(0.005, 40) > confidence(0.05, 40)
    assert confidence(0.02, 80) > confidence(0.02, 20)


def epochs_noise(curve, seed, noise, steps):
    return curve + noise * np.random.default_rng(seed).standard_normal(steps.size)


def test_a_loss_that_exploded_then_sat_at_chance_is_not_learning_with_the_reason():
    """Keras, learning rate far too high: the first epoch's loss is 22.9, then it sits at 1.65
    with accuracy 0.19 on 5 classes (a constant guess, ln 5 = 1.609 or worse): chance, not a
    converged or overfitting run; the advice points at the learning rate, not at raising it."""
    rng = np.random.default_rng(0)
    loss = np.r_[22.93, 1.572 + 0.08 * rng.random(19)]
    acc = np.r_[0.24, 0.187 + 0.01 * rng.random(19)]
    val = 1.55 + 0.1 * rng.random(20)
    run = verdict(keras_pair(loss, val, np.arange(20)) + keras_pair(acc, acc, np.arange(20), tag="epoch_accuracy"))
    finding = next(f for f in run["findings"] if f["code"] == "not_learning")
    assert finding["evidence"]["chance_level"]["classes"] == 5
    assert "lower it" in finding["advice"][0]
