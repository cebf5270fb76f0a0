"""The engine's only input type: one scalar curve as plain numpy arrays.

Readers (event files, TensorBoard's data provider, the data server) turn whatever they read
into `Series`; the engine never knows where the data came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Series:
    """One scalar tag of one run, cleaned up.

    `steps` are strictly increasing integers in the run's own units; `values` are float64 and may
    hold NaN or infinities (the engine reports them); `wall_times` are seconds since the epoch.
    `sampled` says that the source kept only a sample of the points (TensorBoard's reservoir).
    """

    run: str
    tag: str
    steps: np.ndarray
    values: np.ndarray
    wall_times: np.ndarray
    sampled: bool = False
    notes: tuple = field(default=())
    # (run, tag) of the curve whose step axis this one was placed on (`step_units`), or ().
    axis: tuple = field(default=())

    def __len__(self) -> int:
        return int(self.steps.size)

    @property
    def key(self) -> str:
        return f"{self.run}:{self.tag}"


def make_series(
    run: str,
    tag: str,
    steps,
    values,
    wall_times=None,
    *,
    sampled: bool = False,
) -> Series:
    """Build a clean `Series` from points in the order they were written.

    Repeated steps occur in real logs in two ways, and the latest write of a step wins in both:
    - a run restarted from a checkpoint writes steps it had already written (the step goes
      backwards): every earlier point at or after the restart step is dropped;
    - some loops log a tag several times per step (per batch, with the epoch as step): the last
      value of each step is kept. That is also what TensorBoard's data server keeps, so every
      reader gives the engine the same curve.
    """
    steps = np.asarray(steps, dtype=np.int64).ravel()
    values = np.asarray(values, dtype=np.float64).ravel()
    if wall_times is None:
        wall_times = np.zeros(steps.size, dtype=np.float64)
    wall_times = np.asarray(wall_times, dtype=np.float64).ravel()
    n = min(steps.size, values.size, wall_times.size)
    steps, values, wall_times = steps[:n], values[:n], wall_times[:n]
    if n < 2 or bool(np.all(steps[1:] > steps[:-1])):
        # The common case (and every one-point tag): already strictly increasing, nothing to do.
        return Series(run, tag, steps, values, wall_times, sampled=sampled)
    notes = []
    keep = _latest_write_mask(steps)
    if not keep.all():
        notes.append(f"{int((~keep).sum())} points rewritten by a restart were replaced")
        steps, values, wall_times = steps[keep], values[keep], wall_times[keep]
    order = np.argsort(steps, kind="stable")
    steps, values, wall_times = steps[order], values[order], wall_times[order]
    if steps.size and np.any(steps[1:] == steps[:-1]):
        notes.append("several values per step: the last one of each step is kept")
        last = np.r_[steps[1:] != steps[:-1], True]
        steps, values, wall_times = steps[last], values[last], wall_times[last]
    return Series(run, tag, steps, values, wall_times, sampled=sampled, notes=tuple(notes))


def _latest_write_mask(steps: np.ndarray) -> np.ndarray:
    """True for points not overwritten by a later restart (a later, lower-or-equal step)."""
    if steps.size < 2:
        return np.ones(steps.size, dtype=bool)
    restarts = np.flatnonzero(steps[1:] < steps[:-1]) + 1
    keep = np.ones(steps.size, dtype=bool)
    for start in restarts:  # one iteration per restart, not per point
        earlier = keep[:start] & (steps[:start] >= steps[start])
        keep[:start] &= ~earlier
    return keep
