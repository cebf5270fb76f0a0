"""When two curves of one metric are put on one step axis (tb_lossdoctor.step_units), and when not."""

import numpy as np

from tb_lossdoctor.series import make_series
from tb_lossdoctor.step_units import aligned_pair, on_axis_of

T0 = 1_700_000_000.0


def batches(n=1000, seconds_per_step=0.5):
    steps = np.arange(n)
    return make_series("r", "train/loss", steps, 2.0 - steps / n, T0 + seconds_per_step * steps)


def evaluations(steps, wall):
    return make_series("r", "val/loss", steps, np.linspace(1.5, 1.0, len(steps)), wall)


def test_epochs_next_to_batches_move_onto_the_batch_axis_by_wall_time():
    train = batches()
    epochs = np.arange(10)
    val = evaluations(epochs, T0 + 0.5 * (epochs + 1) * 100)  # written after each 100 batches
    t, v = aligned_pair(train, val)
    assert t is train
    assert v.steps.tolist() == [100 * (e + 1) if e < 9 else 999 for e in epochs]  # clipped at the end
    assert v.values.tolist() == val.values.tolist() and "wall time" in v.notes[-1]


def test_the_same_unit_stays_put():
    train = batches()
    steps = np.arange(99, 1000, 100)
    val = evaluations(steps, T0 + 0.5 * steps)
    assert aligned_pair(train, val) == (train, val)


def test_without_wall_times_nothing_moves():
    """Series built without wall times (zeros): nothing to map by."""
    train = make_series("r", "train/loss", np.arange(1000), np.ones(1000))
    val = make_series("r", "val/loss", np.arange(10), np.ones(10))
    assert on_axis_of(train, val) is None


def test_curves_written_at_different_times_do_not_move():
    """Validation written after training ended (a separate evaluation job) is not mapped."""
    train = batches()
    epochs = np.arange(10)
    val = evaluations(epochs, T0 + 10_000 + epochs)
    assert on_axis_of(train, val) is None


def test_training_counted_in_epochs_moves_onto_validation_batches():
    """The mirror slip: validation at the global step, training at the epoch."""
    epochs = np.arange(10)
    train = make_series("r", "train/loss", epochs, 2.0 - epochs / 10, T0 + 0.5 * (epochs + 1) * 100)
    steps = np.arange(0, 1000, 50)
    val = evaluations(steps, T0 + 0.5 * steps)
    t, v = aligned_pair(train, val)
    assert v is val and t.steps[-1] > 900 and "wall time" in t.notes[-1]
