"""Rules: the decisions that map a run group's shape facts to findings.

Order of reasoning, as in the checklist: non-finite values first; then sudden events (blow-up,
spikes); then "too early" when there is not enough evidence; then the train/validation table;
then single-curve symptoms for a run with only one curve. Decisions return facts; `wording`
renders each finding from them.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from tb_lossdoctor import wording
from tb_lossdoctor.chance import ChanceLevel, chance_level
from tb_lossdoctor.codes import EVENTS
from tb_lossdoctor.grouping import MetricPair, RunGroup
from tb_lossdoctor.report import Finding
from tb_lossdoctor.settings import Settings
from tb_lossdoctor.trend import FALLING, RISING, CurveStats, Trend, median, point_noise
from tb_lossdoctor.views import View, analyse_curves, gap_closed, natural_floor, view_of


def diagnose_group(
    group: RunGroup, settings: Settings, known: Optional[Dict[int, CurveStats]] = None
) -> List[Finding]:
    """All findings of one run group: events, plus exactly one trend verdict unless a `nan` or
    `blowup` ended the run. `known`: stats already computed for its curves (`analyse_groups`)."""
    findings: List[Finding] = []
    for index, pair in analysed_pairs(group):
        views = [view_of(c, pair, settings, known) for c in pair.curves]
        # `nan` is for a curve that was finite and then was not, or for a loss that never was:
        # a secondary metric NaN at every point (an AP with no objects of that size) is undefined.
        findings.extend(
            wording.nan_finding(v) for v in views
            if v.stats.first_nonfinite_step is not None and (pair.is_loss or v.stats.finite_points > 0)
        )
        if index == 0:
            # The table is read on the primary metric (`grouping._metric_priority`: logged for
            # both splits, a loss, `loss` itself): secondary metrics would repeat or muddle it.
            findings.extend(pair_findings(pair, views, group, settings))
        elif may_blow_up(pair):
            findings.extend(f for f in (blowup_of(v, group, settings) for v in views) if f)
    return merge_findings(findings)


def analysed_pairs(group: RunGroup) -> List[Tuple[int, MetricPair]]:
    """(index, pair) of the metric pairs whose curves the rules analyse: a finite secondary
    metric (or penalty term) adds nothing, so its analysis is skipped."""
    return [
        (index, pair) for index, pair in enumerate(group.pairs)
        if index == 0 or may_blow_up(pair) or not all(np.isfinite(c.series.values).all() for c in pair.curves)
    ]


def may_blow_up(pair: MetricPair) -> bool:
    """Whether a secondary metric is checked for a blow-up: a loss, not a penalty term (which may
    rise while the model learns)."""
    return pair.is_loss and not pair.is_penalty


def analyse_groups(groups: Iterable[RunGroup], settings: Settings) -> Dict[int, CurveStats]:
    """The stats of every curve `diagnose_group` analyses in `groups`, computed together (curves
    logged at the same steps share the work), by id(curve)."""
    return analyse_curves(
        ((c, pair) for group in groups for _, pair in analysed_pairs(group) for c in pair.curves), settings
    )


def merge_findings(findings: List[Finding]) -> List[Finding]:
    """One finding per code (the first, from the primary metric, wins), most severe first;
    events first within a severity, so the verdict is easy to find."""
    kept: dict = {}
    for f in findings:
        if f.code in kept:
            other = kept[f.code]
            other.evidence.setdefault("also_in", [])
            for tag in f.tags:
                if tag not in other.tags and tag not in other.evidence["also_in"]:
                    other.evidence["also_in"].append(tag)
            continue
        kept[f.code] = f
    rank = {"error": 0, "warning": 1, "info": 2}
    return sorted(kept.values(), key=lambda f: (rank[f.severity], f.code not in EVENTS))


def verdict_of(findings: List[dict]) -> Optional[str]:
    """The run's trend verdict: the one finding that is not an event (None when the run died)."""
    return next((f["code"] for f in findings if f["code"] not in EVENTS), None)


def accuracy_end(group: RunGroup) -> Optional[float]:
    """End level of the group's accuracy in [0, 1] (validation preferred), for chance levels."""
    for pair in group.pairs:
        if pair.is_loss or not any(w in pair.metric.split("_") for w in ("accuracy", "acc")):
            continue
        curve = pair.val or pair.train
        values = curve.series.values[np.isfinite(curve.series.values)]
        if values.size:
            level = median(values[-max(1, values.size // 10):])
            if 0.0 <= level <= 1.0:
                return level
    return None


def blowup_of(v: View, group: RunGroup, settings: Settings) -> Optional[Finding]:
    facts = blowup_facts(v, settings)
    return None if facts is None else wording.blowup_finding(v, facts, group)


def blowup_facts(v: View, settings: Settings) -> Optional[dict]:
    """The curve shot far above its best, suddenly, and stayed there: the facts, or None."""
    st = v.stats
    if st.bin_values.size < 4 or st.span <= 0:
        return None
    rise = st.end - st.best
    floor = max(settings.blowup_noise * st.noise, settings.not_learning_relative * abs(st.best))
    if rise <= floor or rise <= 0:  # the relative floor: float jitter on a constant curve
        return None
    if st.improvement > 0 and rise < settings.blowup_giveback * st.improvement:
        return None
    after = st.bin_steps >= st.best_step
    steps, values = st.bin_steps[after], st.bin_values[after]
    low, high = (st.best + edge * rise for edge in settings.blowup_edges)
    left = int(np.argmax(values > low)) if np.any(values > low) else None
    top = int(np.argmax(values >= high)) if np.any(values >= high) else None
    if left is None or top is None:
        return None
    # The jump: from the last point near the best to the first one past half of the rise.
    jump_from = steps[max(0, left - 1)]
    jump_to = steps[int(np.argmax(values >= st.best + 0.5 * rise))]
    sudden = (jump_to - jump_from) <= settings.blowup_sudden * st.span + 1e-9 or top - left <= 1
    # A slower rise that has since levelled off high is a blow-up too (a regime change); one
    # still rising at the end is divergence.
    if not sudden and (st.recent is None or st.recent.direction == RISING):
        return None
    # It must not come back: from the jump on, (nearly) every smoothed point stays above half
    # of it. A curve that keeps dipping back (a cyclic schedule, an oscillation) did not blow up.
    after_jump = values[steps >= jump_to]
    if st.end < st.best + 0.5 * rise or np.mean(after_jump >= st.best + 0.5 * rise) < settings.blowup_stays:
        return None
    return {"rise": rise, "jump_from": int(jump_from), "jump_to": int(jump_to)}


def pair_findings(
    pair: MetricPair, views: List[View], group: RunGroup, settings: Settings
) -> List[Finding]:
    by_curve = {id(v.curve): v for v in views}
    train, val = (by_curve.get(id(c)) if c is not None else None for c in (pair.train, pair.val))
    main = train if train is not None and train.stats.finite_points > 0 else val
    if main is None or main.stats.finite_points == 0:
        return []
    out: List[Finding] = []
    # On the main curve only: a validation curve that shoots up while training is fine is
    # overfitting, which the table reports.
    blowup = blowup_of(main, group, settings)
    if blowup:
        out.append(blowup)
    before = out[0].step_range[0] if out else None
    spikes = wording.spikes_finding(main, before)
    if spikes:
        out.append(spikes)
    if blowup:
        return out
    if main.stats.first_nonfinite_step is not None and not main.stats.recovered_after_nonfinite:
        return out  # the run died: a trend verdict on what came before would be beside the point
    if main.stats.finite_points < settings.min_points or main.stats.recent is None:
        return out + [wording.too_early_finding(main, settings)]
    usable_val = (
        val is not None
        and main is train
        and val.stats.finite_points >= settings.min_val_points
        and val.stats.has_recent  # `recent is not None`, without fitting a trend the table may not read
    )
    chance = chance_of(main, val if usable_val else None, group, settings)
    finding = (
        table_finding(train, val, settings, chance) if usable_val else single_finding(main, settings, chance)
    )
    judged = val if usable_val and val.tag in finding.tags else main
    return out + [wording.with_holds_since(finding, judged)]


def chance_of(main: View, val: Optional[View], group: RunGroup, settings: Settings) -> Optional[ChanceLevel]:
    """The chance level the primary loss sits at, if any (losses only)."""
    if main.sign < 0:
        return None
    ends = [main.stats.end] + ([val.stats.end] if val is not None else [])
    return chance_level(main.stats.start, ends, accuracy_end(group), settings)


def improved_beyond_noise(st: CurveStats, settings: Settings) -> bool:
    """The curve's improvement stands beyond its point-to-point noise (plus what picking the
    best of many noisy points gives by chance): unmistakable, not only a significant drift."""
    return st.improvement > settings.not_learning_noise * st.noise + st.chance_improvement


def learned(st: CurveStats, settings: Settings) -> bool:
    """Did the curve move at all? A significant downward trend, or an improvement beyond its
    noise (plus what picking the best of many noisy points gives by chance), and beyond float
    jitter on a constant curve."""
    threshold = max(
        settings.not_learning_noise * st.noise + st.chance_improvement,
        settings.not_learning_relative * abs(st.start),
    )
    return st.improvement > threshold or (
        st.overall is not None and st.overall.direction == FALLING and st.improvement > 0
    )


def oscillating(st: CurveStats, settings: Settings) -> bool:
    """It learned something, but the swings of its smoothed curve are at least
    `oscillation_ratio` of everything it learned. Smoothed: per-step minibatch noise around a
    steady curve is normal; a learning rate that is too high shows in the trend."""
    return learned(st, settings) and st.swing >= settings.oscillation_ratio * st.improvement


def swinging_without_learning(v: View, settings: Settings) -> bool:
    """Never improved, but jumps by a good share of its distance to the floor (from its
    typical level: a curve that never moved is best described by its median): too high a
    learning rate keeps it bouncing (a dead network sits still instead)."""
    st = v.stats
    floor = natural_floor(v)
    if floor is None or st.bin_values.size == 0:
        return False
    distance = median(st.bin_values) - floor
    return distance > 0 and st.swing >= settings.swing_of_level * distance


def sustained_rise(st: CurveStats) -> bool:
    """Rising recently and, significantly, all the way from the best point: a steady climb, not
    the upswing of an oscillation."""
    return (
        st.recent is not None
        and st.recent.direction == RISING
        and st.since_best is not None
        and st.since_best.direction == RISING
    )


def single_finding(v: View, settings: Settings, chance: Optional[ChanceLevel] = None) -> Finding:
    """Verdict from one curve's own trend (no usable validation curve)."""
    st = v.stats
    if chance is not None:
        return wording.not_learning_finding(v, chance=chance)
    if sustained_rise(st):  # a climb that swings on the way is still a climb
        return wording.diverging_finding([v])
    if oscillating(st, settings):
        return wording.oscillation_finding(v)
    if not learned(st, settings):
        return wording.oscillation_finding(v) if swinging_without_learning(v, settings) else wording.not_learning_finding(v)
    if st.recent.direction == FALLING:
        if is_slow(v, settings):
            return wording.slow_finding(v)
        return wording.still_learning_finding([v])
    return plateau_or_converged([v], settings)


def table_finding(train: View, val: View, settings: Settings, chance: Optional[ChanceLevel] = None) -> Finding:
    """The checklist's train/validation table, both curves judged over the same recent steps."""
    t, w = train.stats, val.stats
    if chance is not None:
        return wording.not_learning_finding(train, val, chance=chance)
    if sustained_rise(t):  # a climb that swings on the way is still a climb
        return wording.diverging_finding([train, val] if sustained_rise(w) else [train])
    if oscillating(t, settings):
        return wording.oscillation_finding(train)
    if not learned(t, settings) and not learned(w, settings):
        # Too high a learning rate keeps the curves bouncing; "validation jumps around" counts
        # as much as a swinging smoothed training curve. A dead network sits still.
        swinging = next((v for v in (train, val) if swinging_without_learning(v, settings)), None)
        if swinging is not None:
            return wording.oscillation_finding(swinging)
        return wording.not_learning_finding(train, val)
    regression = val_regression(train, val, settings)
    if regression is not None:
        return wording.overfitting_finding(train, val, regression)
    # A gap that opened beyond validation's own noise is overfitting, however much it swings.
    gap = gap_opened(t, w, settings)
    if gap is not None:
        return wording.overfitting_finding(train, val, gap)
    if learned(t, settings) and (oscillating(w, settings) or (
            not learned(w, settings) and swinging_without_learning(val, settings))):
        return wording.oscillation_finding(val)
    return window_finding(train, val, shared_window(t, w, settings), settings)


def window_finding(train: View, val: View, window: float, settings: Settings) -> Finding:
    """The table read over the steps from `window` on, where both curves are judged together."""
    t, w = train.stats, val.stats
    tw, vw = t.trend_from(window), w.trend_from(window)
    if tw is None or vw is None:  # sparse validation: no trend to compare, read the training curve
        return single_finding(train, settings)
    shared_start = max(t.first_step, w.first_step)
    td = tw.direction_against(t.range_from(shared_start), settings)
    vd = vw.direction_against(w.range_from(shared_start), settings)
    # Overfitting needs a generalisation gap to widen: validation ends worse than training.
    if td == FALLING and w.end > t.end and lags(tw, vw, settings):
        return wording.overfitting_finding(train, val, {"window": (tw, vw)})
    if vd == FALLING and lags(vw, tw, settings):
        return wording.data_problem_finding(train, val, tw, vw)
    if vd == FALLING or (td == FALLING and keeps_up(tw, vw, settings)):
        # Validation still improves (or moves along with training, only noisier).
        return still_learning_or_slow(train, val, tw, vw, settings)
    if td == FALLING and not resolves_pace(tw, vw, settings):
        # Validation too noisy over this window to tell "flat" from "keeping pace": ask the
        # latest window that can (validation is usually the noisy, sparse curve).
        wider = resolving_window(t, w, window, settings)
        if wider is None:  # no window can: no trend to compare, read the training curve
            return single_finding(train, settings)
        wide_t, wide_v = t.trend_from(wider), w.trend_from(wider)
        if keeps_up(wide_t, wide_v, settings):
            return still_learning_or_slow(train, val, wide_t, wide_v, settings, too_noisy_from=vw.start_step)
    # Validation flat: training may still creep down, but held-out results stopped improving.
    return plateau_or_converged([train, val], settings, training_falls=td == FALLING)


def still_learning_or_slow(train: View, val: View, tw: Trend, vw: Trend, settings: Settings,
                           too_noisy_from: Optional[int] = None) -> Finding:
    """Validation improves along with training over the window of `tw`/`vw`: still learning,
    or learning too slowly when training falls at a constant rate far from its floor.
    `too_noisy_from`: the window was widened, validation being too noisy from that step on."""
    if is_slow(train, settings):
        return wording.slow_finding(train, val)
    return wording.still_learning_finding([train, val], (tw, vw), too_noisy_from)


def resolves_pace(leader: Trend, follower: Trend, settings: Settings) -> bool:
    """Can this window tell a follower that keeps pace from a flat one? The two readings lie
    `val_keeps_up` of the leader's change apart from the threshold between them; the follower's
    standard error must be under `trend_z` of that. It looks at the noise, never at which way the
    follower went, so choosing a window by it does not go looking for a verdict."""
    return leader.change < 0 and settings.val_keeps_up * -leader.change > settings.trend_z * follower.stderr


def resolving_window(t: CurveStats, w: CurveStats, window: float, settings: Settings) -> Optional[float]:
    """The latest start before `window` (one validation point further back at a time, within the
    steps both curves cover) whose window resolves validation's pace; None if there is none."""
    shared_start = max(t.first_step, w.first_step)
    earlier = w.bin_steps[(w.bin_steps < window) & (w.bin_steps >= shared_start)]
    for start in earlier[::-1]:
        tw, vw = t.trend_from(float(start)), w.trend_from(float(start))
        if tw is not None and vw is not None and resolves_pace(tw, vw, settings):
            return float(start)
    return None


def shared_window(t: CurveStats, w: CurveStats, settings: Settings) -> float:
    """First step of the recent window both curves are judged over: the last `recent_fraction`
    of the steps they share, widened to hold `min_window_bins` points of each curve (the
    sparser one, usually validation, sets it; a training curve with gaps can too)."""
    lo, hi = max(t.first_step, w.first_step), min(t.final_step, w.final_step)
    start = hi - settings.recent_fraction * max(hi - lo, 0)
    for curve in (w, t):
        steps = curve.bin_steps[curve.bin_steps <= hi]
        if steps.size >= settings.min_window_bins:
            start = min(start, float(steps[-settings.min_window_bins]))
        elif steps.size:
            start = min(start, float(steps[0]))
    return start


def val_regression(train: View, val: View, settings: Settings) -> Optional[dict]:
    """Validation got worse since its best point while training learned: the level of its last
    evaluations stands above the best by `regression_min` of what it had improved, and either
    by more than its noise (measured since the best) or with a significant climb since the
    best; confirmed over `patience` evaluations (fewer when validation is sparse: then the
    finding says how few). Returns the facts, or None."""
    t, w = train.stats, val.stats
    if not learned(t, settings):
        return None
    after = w.bin_steps > w.best_step
    values = w.bin_values[after]
    n_after = int(values.size)
    sparse = w.finite_points <= settings.sparse_val_points
    if n_after == 0 or (n_after < settings.patience and not sparse):
        return None
    level = median(values[-min(settings.patience, n_after):])
    rise = level - w.best
    # What the rise is measured against: what the model gained, the larger of the two curves'
    # improvements (same metric, same units). Validation's own small gain or range would make a
    # flat, quiet curve's smallest drift (0.1% of its level) look like a regression.
    gained = max(t.improvement, w.improvement)
    if rise < settings.regression_min * gained or not beyond_chance(val, values, rise, sparse, settings):
        return None
    return {"rise": rise, "level": level, "evaluations_after_best": n_after,
            "noise": noise_since_best(w, values), "sparse": sparse or n_after < settings.patience}


def gap_opened(t: CurveStats, w: CurveStats, settings: Settings) -> Optional[dict]:
    """Training clearly learned while validation never moved beyond its noise, and the gap between them
    (validation minus training) opened by more than `regression_noise` of validation's noise
    since validation's first evaluation: overfitting from the start. Returns the facts."""
    if not improved_beyond_noise(t, settings) or learned(w, settings):
        return None
    gap_then = w.start - float(np.interp(w.first_step, t.bin_steps, t.bin_values))
    gap_now = w.end - t.end
    if gap_now - gap_then <= settings.regression_noise * w.noise:
        return None
    return {"gap_then": gap_then, "gap_now": gap_now}


def beyond_chance(val: View, after_best: np.ndarray, rise: float, sparse: bool, settings: Settings) -> bool:
    """Is validation's rise since its best more than noise? A significant climb since the best,
    or a rise beyond `regression_noise` of its noise since the best (the early, wilder part of a
    curve says little about how much its late level wanders). A sparse curve has no usable
    noise: there the rise must be `sparse_rise` of the best level's distance to its floor."""
    w = val.stats
    if w.since_best is not None and w.since_best.direction == RISING:
        return True
    if sparse:
        floor = natural_floor(val)
        return floor is not None and rise >= settings.sparse_rise * (w.best - floor)
    return rise > settings.regression_noise * noise_since_best(w, after_best)


def noise_since_best(w: CurveStats, after_best: np.ndarray) -> float:
    """Point-to-point noise of the evaluations since the best: five second differences at
    least, or the local estimate is a guess and the whole curve's is used."""
    return point_noise(after_best) if after_best.size >= 7 else w.noise


def lags(leader: Trend, follower: Trend, settings: Settings) -> bool:
    """Over the same window, the follower improved less than `val_keeps_up` of what the leader
    improved (or got worse), and the difference is beyond both curves' noise ("flat is
    relative": same metric, same units, so the gap between the curves changes)."""
    if leader.change >= 0 or keeps_up(leader, follower, settings):
        return False
    difference = follower.change - leader.change
    return difference > settings.trend_z * float(np.hypot(leader.stderr, follower.stderr))


def keeps_up(leader: Trend, follower: Trend, settings: Settings) -> bool:
    """The follower improved by at least `val_keeps_up` of the leader's improvement."""
    return leader.change < 0 and follower.change <= settings.val_keeps_up * leader.change


def is_slow(v: View, settings: Settings) -> bool:
    """Falling at a constant rate and still far from the floor: the learning rate is too low.
    Without a known floor a steady fall is simply "still learning"."""
    closed = gap_closed(v)
    return is_linear(v.stats, settings) and closed is not None and closed < settings.slow_gap_closed


def is_linear(st: CurveStats, settings: Settings) -> bool:
    """No deceleration: the recent rate is still most of the run's average rate."""
    if st.recent is None or st.span <= 0 or st.recent.end_step <= st.recent.start_step:
        return False
    recent_rate = -st.recent.change / (st.recent.end_step - st.recent.start_step)
    average_rate = (st.start - st.end) / st.span
    return average_rate > 0 and recent_rate >= settings.slow_linearity * average_rate


def plateau_or_converged(views: List[View], settings: Settings, training_falls: bool = False) -> Finding:
    """Flat after learning: a plateau only with evidence that the level is poor (the loss
    judged on held-out data closed under `plateau_gain` of its way to its floor); otherwise
    converged, whatever the floor of the loss may be."""
    judged = views[-1]  # validation when there is one: the level that matters
    closed = gap_closed(judged)
    if closed is not None and closed < settings.plateau_gain:
        return wording.plateau_finding(views, judged, closed)
    return wording.converged_finding(views, training_falls)
