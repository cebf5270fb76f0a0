"""Every threshold of the engine, in one documented place.

All thresholds are ratios (scale-free) or counts; none is in the units of any particular loss.
Levels are compared with differences of levels (so adding a constant changes nothing) and
differences with other differences or with the curve's own noise (so multiplying changes
nothing). The one exception is documented on `plateau_gap_closed`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    # --- smoothing and windows -------------------------------------------------------------
    bins: int = 40
    """A curve is summarised by the medians of this many equal-width step bins, so a series
    logged 1,000 or 100,000 times gives the same smoothed shape."""
    recent_fraction: float = 0.3
    """The "recent" window whose trend decides falling / flat / rising: the last 30% of steps."""
    min_window_bins: int = 6
    """The recent window holds at least this many bins (or points): with fewer, even a perfectly
    monotone window cannot pass the rank test at 5%, and every trend would read as flat."""

    start_fraction: float = 0.02
    """A curve's start level is the median of its first 2% of points..."""
    start_max_points: int = 25
    """... at most this many (and at least one): enough to steady a noisy per-batch start, few
    enough to stay before the early drop of an epoch-level curve."""
    end_bins: int = 3
    """Its end level is the median of its last few smoothed points (one for short curves)."""
    best_of_many_z: float = 2.5
    """The lowest of ~40 noisy bin medians lies about this many of their standard errors below
    the level by chance alone: an improvement smaller than that is no improvement."""

    # --- evidence needed -----------------------------------------------------------------
    min_points: int = 8
    """Fewer points than this on the main curve: too early to judge a trend."""
    min_val_points: int = 3
    """A validation curve with fewer points is shown but not used for the train/val table."""

    # --- trend -----------------------------------------------------------------------------
    trend_z: float = 2.5
    """A recent change must exceed this many standard errors of the robust slope."""
    rank_z: float = 1.96
    """... and the Mann-Kendall rank test must agree at the 5% level (robust to outliers)."""
    trend_min_change: float = 0.05
    """... and at least this fraction of the curve's whole range, to count as a trend."""
    regression_min: float = 0.05
    """Validation has "risen since its best" when it gave back at least this fraction of what
    the model gained (the larger of the two curves' improvements, same units: a twentieth, small
    next to the gain; the noise test below does the rest)..."""
    regression_noise: float = 3.0
    """... and its level since then stands this many noise units above the best (the best of
    many noisy points lies about 2 units low by chance alone), or it climbs significantly..."""
    patience: int = 3
    """... confirmed by at least this many evaluations after the best one (Keras'
    `EarlyStopping(patience=...)` idea: one uptick is not overfitting)."""
    val_keeps_up: float = 0.5
    """Train falling, validation "flat": validation improved less than this fraction of what
    training improved over the same steps, so the gap between them widens. It is the midpoint
    between "flat" and "keeping pace", so a window tells them apart only when this fraction of
    training's change stands `trend_z` standard errors of validation's change clear."""
    sparse_val_points: int = 6
    """A validation curve with this many points or fewer cannot show a significant trend: it
    is judged on what its points show (risen above the best or not), with lower confidence..."""
    sparse_rise: float = 0.1
    """... risen when its last evaluations sit this fraction of the best level's distance to its
    floor above the best (10% above the best for a loss): a few points give no noise estimate."""

    # --- learning or not -------------------------------------------------------------------
    not_learning_noise: float = 3.0
    """The curve never improved by more than this many point-to-point noise units (the best of
    many noisy points lies a couple of noise units below the level by chance alone)."""
    not_learning_relative: float = 1e-3
    """... or by more than this fraction of its own starting magnitude (an exactly constant
    loss has no noise to compare with)."""
    plateau_gain: float = 0.1
    """A flat loss is at a poor level (a plateau, not convergence) only with evidence: it
    closed less than this fraction of the gap between its start and its natural floor (0 for
    non-negative losses, the top for accuracies in [0, 1]): it learned next to nothing. A
    smaller gain says nothing: many losses have a floor well above zero."""
    chance_tolerance: float = 0.02
    """A loss within this fraction of ln K sits at chance level for K classes..."""
    chance_accuracy_tolerance: float = 0.1
    """... and an accuracy within this fraction of 1/K agrees on K."""
    chance_max_classes: int = 1000
    """Chance levels are looked for up to this many classes (ln 1000 = 6.9)."""
    slow_linearity: float = 0.6
    """Slow convergence: the recent rate of improvement is still this fraction of the run's
    average rate (no deceleration at all), while the curve keeps falling..."""
    slow_gap_closed: float = 0.25
    """... and it has closed less than this fraction of the gap to its floor."""

    # --- sudden events ---------------------------------------------------------------------
    blowup_giveback: float = 0.5
    """A blow-up gives back at least this fraction of the improvement made before it..."""
    blowup_noise: float = 6.0
    """... and rises more than this many noise units above the best level."""
    blowup_sudden: float = 0.15
    """... within at most this fraction of the run's steps (slower rises are divergence)..."""
    blowup_stays: float = 0.9
    """... and at least this share of the smoothed points after the jump stay above half of
    it: a curve that keeps dipping back (a cyclic schedule, an oscillation) did not blow up."""
    blowup_edges: tuple = (0.1, 0.9)
    """The jump is timed between the first points past these fractions of the rise."""
    spike_noise: float = 10.0
    """A spike stands this many robust noise units above the local running median..."""
    spike_min_height: float = 0.3
    """... and at least this fraction of the curve's range, then comes back."""
    spike_window: int = 11
    """Points in the running median that spikes are measured against."""
    spike_max_points: int = 3
    """A spike lasts at most this many points before the curve is back (a few bad epochs after
    a learning-rate restart)..."""
    spike_max_width: float = 0.05
    """... or this fraction of a dense curve's points (one bad stretch of batches)."""

    # --- oscillation -----------------------------------------------------------------------
    oscillation_ratio: float = 0.25
    """Point-to-point swings (robust noise) of at least this fraction of the total improvement:
    the loss is bouncing rather than converging."""
    swing_of_level: float = 0.1
    """A loss that never improved but swings by at least this fraction of its distance to its
    floor (0 for a non-negative loss) is bouncing (learning rate too high), not stuck. Like
    `plateau_gap_closed`, it applies only where the floor is known."""
