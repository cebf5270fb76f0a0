"""Step units: two curves of one metric that count steps differently.

Custom training loops often log the training loss at the global batch step and the validation
loss at the epoch number (`add_scalar("val/loss", v, epoch)`). Read as they are, validation's
whole run sits on the first few training steps, and a healthy run looks like overfitting.
Both curves were written over the same hours, though, so their wall times say how one axis maps
onto the other: the curve that counts in the coarser unit is placed on the finer curve's step
axis by interpolating the finer curve's steps at its wall times.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np

from tb_lossdoctor.series import Series, make_series

# Units differ when, at the same wall time, one curve's step is at least this many times the
# other's: batches per epoch are rarely under 10, while two curves in the same unit agree to
# within a few percent (a slack of 5 leaves room for uneven epochs and late evaluations).
UNIT_RATIO = 5.0
# Share of the coarser curve's points that must lie within the finer curve's wall-time span
# (with 5% slack at either end: a final evaluation after the last training log).
SAME_PERIOD = 0.8


def aligned_pair(train: Series, val: Series) -> Tuple[Series, Series]:
    """(train, val) with the coarser-unit curve moved onto the other's step axis, if the two
    count steps in different units over the same wall-clock period; unchanged otherwise."""
    moved = on_axis_of(train, val)
    if moved is not None:
        return train, moved
    moved = on_axis_of(val, train)
    if moved is not None:
        return moved, val
    return train, val


def on_axis_of(reference: Series, other: Series) -> Optional[Series]:
    """`other` re-stepped onto `reference`'s axis, or None when nothing says its unit differs.

    Needs real wall times on both (readers give seconds since the epoch; constructed series
    have zeros), increasing on the reference, and `other` written during the reference's span.
    """
    if len(reference) < 2 or len(other) < 2:
        return None
    # Cheap test first: in the same unit, the two last steps are within the ratio of each other.
    if UNIT_RATIO * max(int(other.steps[-1]), 1) > int(reference.steps[-1]):
        return None
    ref_wall, other_wall = reference.wall_times, other.wall_times
    if not (np.isfinite(ref_wall).all() and np.isfinite(other_wall).all()):
        return None
    if ref_wall[0] <= 0 or other_wall[0] <= 0 or np.any(np.diff(ref_wall) < 0):
        return None
    span = float(ref_wall[-1] - ref_wall[0])
    if span <= 0:
        return None
    inside = (other_wall >= ref_wall[0] - 0.05 * span) & (other_wall <= ref_wall[-1] + 0.05 * span)
    if inside.mean() < SAME_PERIOD:
        return None
    mapped = np.interp(other_wall, ref_wall, reference.steps.astype(np.float64))
    if mapped[-1] < UNIT_RATIO * max(int(other.steps[-1]), 1):
        return None  # written over the same time, yet the steps agree: same unit
    moved = make_series(other.run, other.tag, np.rint(mapped), other.values, other_wall, sampled=other.sampled)
    note = (f"its steps ({int(other.steps[0])}-{int(other.steps[-1])}) count a coarser unit than "
            f"{reference.tag}'s (epochs next to batches?): placed on that curve's step axis by wall time")
    return dataclasses.replace(moved, notes=other.notes + moved.notes + (note,), axis=(reference.run, reference.tag))
