"""Rules: map the classifier's shape facts of a run group to findings.

Order of reasoning, as in the checklist: non-finite values first; then sudden events (blow-up,
spikes); then "too early" when there is not enough evidence; then the train/validation table;
then single-curve symptoms for a run with only one curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from tb_lossdoctor.advice import advice_for
from tb_lossdoctor.chance import ChanceLevel, chance_level
from tb_lossdoctor.codes import EVENTS, FATAL_EVENTS, SEVERITY
from tb_lossdoctor.grouping import Curve, MetricPair, RunGroup
from tb_lossdoctor.naming import describe_role, metric_label
from tb_lossdoctor.report import Finding
from tb_lossdoctor.settings import Settings
from tb_lossdoctor.trend import FALLING, FLAT, RISING, CurveStats, Trend, analyse, median, point_noise

@dataclass
class View:
    """One curve with its stats; values in the stats are oriented (lower is better)."""

    curve: Curve
    stats: CurveStats
    sign: float  # +1 for losses, -1 for accuracy-like metrics
    metric: str

    def value(self, oriented: float) -> float:
        return float(self.sign * oriented)

    @property
    def name(self) -> str:
        metric = self.metric.replace("_", " ")
        return f"{describe_role(self.curve.role)} {metric}"

    @property
    def tag(self) -> str:
        return self.curve.series.key


def view_of(curve: Curve, pair: MetricPair, settings: Settings) -> View:
    sign = 1.0 if pair.is_loss else -1.0
    s = curve.series
    return View(curve, analyse(s.steps, sign * s.values, settings), sign, pair.metric)


def diagnose_group(group: RunGroup, settings: Settings) -> List[Finding]:
    """All findings of one run group: events, plus exactly one trend verdict unless a `nan` or
    `blowup` ended the run."""
    findings: List[Finding] = []
    for index, pair in enumerate(group.pairs):
        if index > 0 and not pair.is_loss and all(np.isfinite(c.series.values).all() for c in pair.curves):
            continue  # a finite secondary metric adds nothing: skip its analysis
        views = [view_of(c, pair, settings) for c in pair.curves]
        # `nan` is for a curve that was finite and then was not, or for a loss that never was:
        # a secondary metric NaN at every point (an AP with no objects of that size) is undefined.
        findings.extend(
            nan_finding(v) for v in views
            if v.stats.first_nonfinite_step is not None and (pair.is_loss or v.stats.finite_points > 0)
        )
        if index == 0:
            # The table is read on the primary metric (`loss`, else the first loss with a
            # validation curve): secondary metrics would repeat or muddle its verdict.
            findings.extend(pair_findings(pair, views, group, settings))
        elif pair.is_loss:
            findings.extend(f for f in map(lambda v: blowup_finding(v, group, settings), views) if f)
    return merge_findings(findings)


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


# --- single-curve events ----------------------------------------------------------------------


def nan_finding(v: View) -> Finding:
    st = v.stats
    step = st.first_nonfinite_step
    kind = "NaN" if np.isnan(st.first_nonfinite_value) else "infinite"
    if st.finite_points == 0:
        summary = f"The {v.name} is {kind} from its first point (step {fmt_step(step)}): nothing was ever finite."
    else:
        summary = (
            f"The {v.name} was {fmt(v.value(st.last_finite_value))} at step "
            f"{fmt_step(st.last_finite_step)}, then {kind} from step {fmt_step(step)}"
        )
        bad = st.points - st.finite_points
        summary += (
            f"; {bad:,} of its {st.points:,} points are non-finite."
            if st.recovered_after_nonfinite
            else " and never recovered."
        )
    lo = st.last_finite_step if st.last_finite_step is not None else step
    return Finding(
        code="nan",
        severity="error",
        title=f"{v.name.capitalize()} became {kind} at step {fmt_step(step)}",
        summary=summary,
        metric=v.metric,
        tags=[v.tag],
        step=step,
        step_range=(lo, step),
        evidence={
            "first_nonfinite_step": step,
            "first_nonfinite_value": st.first_nonfinite_value,
            "last_finite_step": st.last_finite_step,
            "last_finite_value": v.value(st.last_finite_value) if st.finite_points else None,
            "nonfinite_fraction": round(st.nonfinite_fraction, 4),
            "recovered": st.recovered_after_nonfinite,
        },
        advice=advice_for("nan"),
        confidence=0.99,
    )


def blowup_finding(v: View, group: RunGroup, settings: Settings) -> Optional[Finding]:
    """The curve shot far above its best, suddenly, and stayed there."""
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
    low, high = st.best + 0.1 * rise, st.best + 0.9 * rise
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
    if st.end < st.best + 0.5 * rise or np.mean(after_jump >= st.best + 0.5 * rise) < 0.9:
        return None
    evidence = {
        "best_step": st.best_step,
        "best_value": v.value(st.best),
        "jump_step": int(jump_to),
        "value_after": v.value(st.end),
        "rise_over_improvement": rise / st.improvement if st.improvement > 0 else None,
    }
    lr_note = learning_rate_note(group, int(jump_to), evidence)
    summary = (
        f"The {v.name} reached {fmt(v.value(st.best))} at step {fmt_step(st.best_step)}, "
        f"jumped to {fmt(v.value(st.end))} by step {fmt_step(jump_to)} and stayed there"
        f"{lr_note}."
    )
    return Finding(
        code="blowup",
        severity="error",
        title=f"{v.name.capitalize()} blew up at step {fmt_step(jump_to)}",
        summary=summary,
        metric=v.metric,
        tags=[v.tag],
        step=int(jump_to),
        step_range=(int(jump_from), int(jump_to)),
        evidence=evidence,
        advice=advice_for(
            "blowup",
            f"Restart from the checkpoint at or before step {fmt_step(st.best_step)} with a lower learning rate.",
        ),
        confidence=0.9,
    )


def learning_rate_note(group: RunGroup, step: int, evidence: dict) -> str:
    """" right after the learning rate peaked at ..." when the LR curve explains the event."""
    lr = group.learning_rate
    if lr is None or len(lr) < 2:
        return ""
    finite = np.isfinite(lr.values)
    if not finite.any():
        return ""
    steps, values = lr.steps[finite], lr.values[finite]
    upto = steps <= step
    if not upto.any():
        return ""
    peak = int(np.argmax(values))
    evidence["learning_rate_at_step"] = float(values[upto][-1])
    evidence["learning_rate_peak"] = float(values[peak])
    evidence["learning_rate_peak_step"] = int(steps[peak])
    if values[upto][-1] >= 0.5 * values[peak] and values[peak] > values[0] * 1.5:
        return (
            f", while the learning rate was near its peak of {fmt(values[peak])} "
            f"(step {fmt_step(int(steps[peak]))})"
        )
    return ""


def spikes_finding(v: View, before: Optional[int] = None) -> Optional[Finding]:
    """Spikes of a curve; only those before `before` (a blow-up's start) when given."""
    spikes = [s for s in v.stats.spikes if before is None or s[0] < before]
    if not spikes:
        return None
    worst = max(spikes, key=lambda s: s[1])
    steps = [s for s, _ in spikes]
    return Finding(
        code="spikes",
        severity="warning",
        title=f"{len(spikes)} spike{'s' if len(spikes) > 1 else ''} in the {v.name}",
        summary=(
            f"The {v.name} jumped {fmt(worst[1])} above its local level at step "
            f"{fmt_step(worst[0])} and came back; {len(spikes)} such spike(s) in all."
        ),
        metric=v.metric,
        tags=[v.tag],
        step=worst[0],
        step_range=(min(steps), max(steps)),
        evidence={"spike_steps": steps[:20], "largest_spike": worst[1], "count": len(spikes)},
        advice=advice_for("spikes", f"Inspect the batch at step {fmt_step(worst[0])} first."),
        confidence=0.7,
    )


# --- the table and single-curve trends -----------------------------------------------------------


def pair_findings(
    pair: MetricPair, views: List[View], group: RunGroup, settings: Settings
) -> List[Finding]:
    by_role = {v.curve.role: v for v in views}
    train, val = by_role.get("train"), by_role.get("val")
    main = train if train is not None and train.stats.finite_points > 0 else val
    if main is None or main.stats.finite_points == 0:
        return []
    out: List[Finding] = []
    # On the main curve only: a validation curve that shoots up while training is fine is
    # overfitting, which the table reports.
    blowup = blowup_finding(main, group, settings)
    if blowup:
        out.append(blowup)
    before = out[0].step_range[0] if out else None
    spikes = spikes_finding(main, before)
    if spikes:
        out.append(spikes)
    if blowup:
        return out
    if main.stats.first_nonfinite_step is not None and not main.stats.recovered_after_nonfinite:
        return out  # the run died: a trend verdict on what came before would be beside the point
    if main.stats.finite_points < settings.min_points or main.stats.recent is None:
        return out + [too_early_finding(main, settings)]
    usable_val = (
        val is not None
        and main is train
        and val.stats.finite_points >= settings.min_val_points
        and val.stats.recent is not None
    )
    chance = chance_of(main, val if usable_val else None, group, settings)
    finding = (
        table_finding(train, val, settings, chance) if usable_val else single_finding(main, settings, chance)
    )
    return out + [finding]


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
    return learned(st, settings) and st.smooth_noise >= settings.oscillation_ratio * st.improvement


def swinging_without_learning(v: View, settings: Settings) -> bool:
    """Never improved, but jumps by a good share of its distance to the floor: too high a
    learning rate keeps it bouncing (a dead network sits still instead)."""
    st = v.stats
    floor = natural_floor(v)
    if floor is None:
        return False
    distance = st.start - floor
    return distance > 0 and st.smooth_noise >= settings.swing_of_level * distance


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
        return not_learning_finding(v, chance=chance)
    if oscillating(st, settings):
        return oscillation_finding(v)
    if sustained_rise(st):
        return diverging_finding([v])
    if not learned(st, settings):
        return oscillation_finding(v) if swinging_without_learning(v, settings) else not_learning_finding(v)
    if st.recent.direction == FALLING:
        if is_slow(v, settings):
            return slow_finding(v)
        return still_learning_finding([v])
    return plateau_or_converged([v], settings)


def table_finding(train: View, val: View, settings: Settings, chance: Optional[ChanceLevel] = None) -> Finding:
    """The checklist's train/validation table, both curves judged over the same recent steps."""
    t, w = train.stats, val.stats
    if chance is not None:
        return not_learning_finding(train, val, chance=chance)
    if oscillating(t, settings):
        return oscillation_finding(train)
    if sustained_rise(t):
        return diverging_finding([train, val] if sustained_rise(w) else [train])
    if not learned(t, settings) and not learned(w, settings):
        if swinging_without_learning(train, settings):
            return oscillation_finding(train)
        return not_learning_finding(train, val)
    regression = val_regression(train, val, settings)
    if regression is not None:
        return overfitting_finding(train, val, regression)
    if learned(t, settings) and (oscillating(w, settings) or (
            not learned(w, settings) and swinging_without_learning(val, settings))):
        return oscillation_finding(val)
    gap = gap_opened(t, w, settings)
    if gap is not None:
        return overfitting_finding(train, val, gap)
    window = shared_window(t, w, settings)
    tw, vw = t.trend_from(window), w.trend_from(window)
    if tw is None or vw is None:  # sparse validation: no trend to compare, read the training curve
        return single_finding(train, settings)
    shared_start = max(t.first_step, w.first_step)
    td = tw.direction_against(t.range_from(shared_start), settings)
    vd = vw.direction_against(w.range_from(shared_start), settings)
    # Overfitting needs a generalisation gap to widen: validation ends worse than training.
    if td == FALLING and w.end > t.end and lags(tw, vw, settings):
        return overfitting_finding(train, val, {"window": (tw, vw)})
    if vd == FALLING and lags(vw, tw, settings):
        return data_problem_finding(train, val, tw, vw)
    if vd == FALLING or (td == FALLING and keeps_up(tw, vw, settings)):
        # Validation still improves (or moves along with training, only noisier).
        if is_slow(train, settings):
            return slow_finding(train, val)
        return still_learning_finding([train, val])
    # Validation flat: training may still creep down, but held-out results stopped improving.
    return plateau_or_converged([train, val], settings)


def shared_window(t: CurveStats, w: CurveStats, settings: Settings) -> float:
    """First step of the recent window both curves are judged over: the last `recent_fraction`
    of the steps they share, widened to hold `min_window_bins` validation points."""
    lo, hi = max(t.first_step, w.first_step), min(t.final_step, w.final_step)
    start = hi - settings.recent_fraction * max(hi - lo, 0)
    val_steps = w.bin_steps[w.bin_steps <= hi]
    if val_steps.size >= settings.min_window_bins:
        start = min(start, float(val_steps[-settings.min_window_bins]))
    elif val_steps.size:
        start = float(val_steps[0])
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
    gained = max(w.improvement, w.value_range if w.improvement <= 0 else 0.0)
    if rise < settings.regression_min * gained or not beyond_chance(val, values, rise, sparse, settings):
        return None
    return {"rise": rise, "level": level, "evaluations_after_best": n_after, "sparse": sparse or n_after < settings.patience}


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
    noise = point_noise(after_best) if after_best.size >= 5 else w.noise
    return rise > settings.regression_noise * noise


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


# --- finding builders ------------------------------------------------------------------------------


def _finding(code: str, views: List[View], title: str, summary: str, step, step_range, evidence,
             specific=(), confidence=0.8) -> Finding:
    return Finding(
        code=code,
        severity=SEVERITY[code],
        title=title,
        summary=summary,
        metric=views[0].metric,
        tags=[v.tag for v in views],
        step=None if step is None else int(step),
        step_range=None if step_range is None else (int(step_range[0]), int(step_range[1])),
        evidence=evidence,
        advice=advice_for(code, *specific),
        confidence=confidence,
    )


def _levels(v: View) -> dict:
    st = v.stats
    return {
        "start": v.value(st.start), "best": v.value(st.best), "best_step": st.best_step,
        "end": v.value(st.end), "points": st.finite_points,
    }


def _recent(v: View) -> dict:
    r = v.stats.recent
    return {"direction": r.direction, "change": v.value(r.change), "window": [r.start_step, r.end_step]}


def too_early_finding(v: View, settings: Settings) -> Finding:
    st = v.stats
    return _finding(
        "too_early", [v],
        f"Too early to judge: {st.finite_points} point{'s' if st.finite_points != 1 else ''} so far",
        f"The {v.name} has {st.finite_points} finite point(s) up to step "
        f"{fmt_step(st.last_finite_step)}; at least {settings.min_points} are needed to call a trend.",
        st.last_finite_step, (st.first_step, st.final_step),
        {"points": st.finite_points, "needed": settings.min_points},
        confidence=0.9,
    )


def not_learning_finding(train: View, val: Optional[View] = None, chance: Optional[ChanceLevel] = None) -> Finding:
    st = train.stats
    views = [train] + ([val] if val is not None else [])
    evidence = {**_levels(train), "improvement": st.improvement, "noise": st.noise}
    if chance is not None:
        evidence["chance_level"] = chance.to_evidence()
        summary = (
            f"The {train.name} sits at {fmt(train.value(st.end))} at step {fmt_step(st.final_step)}, "
            f"the chance level ({chance.describe()}): the model learned nothing."
        )
    else:
        summary = (
            f"The {train.name} stayed at about {fmt(train.value(st.start))} from step "
            f"{fmt_step(st.first_step)} to {fmt_step(st.final_step)}: its best improvement "
            f"({fmt(st.improvement)}) is within its own noise."
        )
    return _finding(
        "not_learning", views,
        f"{train.name.capitalize()} {'is at chance level' if chance else 'has not moved since the start'}",
        summary,
        st.first_step, (st.first_step, st.final_step),
        evidence,
        confidence=0.85,
    )


def oscillation_finding(v: View) -> Finding:
    st = v.stats
    r = st.recent
    return _finding(
        "oscillation", [v],
        f"{v.name.capitalize()} swings without converging",
        f"The {v.name} jumps by about {fmt(st.noise)} from one point to the next, "
        f"{st.noise / st.improvement:.0%} of the {fmt(st.improvement)} it improved in all."
        if st.improvement > 0 else
        f"The {v.name} jumps by about {fmt(st.noise)} from one point to the next without improving.",
        r.start_step, (r.start_step, r.end_step),
        {**_levels(v), "noise": st.noise, "improvement": st.improvement,
         "noise_over_improvement": st.noise / st.improvement if st.improvement > 0 else None},
        confidence=0.7,
    )


def diverging_finding(views: List[View]) -> Finding:
    v = views[0]
    st = v.stats
    names = " and ".join(x.name for x in views)
    worse = metric_label("min" if v.sign > 0 else "max")[1]
    return _finding(
        "diverging", views,
        f"{names.capitalize()} {'are' if len(views) > 1 else 'is'} {worse} steadily",
        f"The {v.name} went from its best {fmt(v.value(st.best))} (step {fmt_step(st.best_step)}) "
        f"to {fmt(v.value(st.end))} at step {fmt_step(st.final_step)}, {worse} over the last "
        f"{fmt_step(st.recent.end_step - st.recent.start_step)} steps.",
        st.best_step, (st.best_step, st.final_step),
        {**_levels(v), "recent": _recent(v)},
        confidence=0.8,
    )


def overfitting_finding(train: View, val: View, facts: dict) -> Finding:
    """Located at the best logged validation point: the checkpoint to keep. `facts` hold what
    the decision checked: the rise since the best, or both curves' changes over one window."""
    w = val.stats
    best, best_step = w.best_point, w.best_point_step
    pct = relative(val.value(best), val.value(w.end))
    worse = "risen" if val.sign > 0 else "fallen"
    bottomed = "bottomed" if val.sign > 0 else "peaked"
    evidence = {"best_val_step": best_step, "best_val": val.value(best), "val_end": val.value(w.end),
                "val_change_since_best": val.value(w.end - best), "train": _levels(train),
                "val_recent": _recent(val)}
    if "gap_now" in facts:
        summary = (
            f"The {train.name} improved to {fmt(train.value(train.stats.end))} while the {val.name} "
            f"never improved beyond its noise (near {fmt(val.value(w.end))}): the gap between them "
            f"went from {fmt(facts['gap_then'])} to {fmt(facts['gap_now'])}."
        )
        evidence["gap"] = {"at_first_evaluation": facts["gap_then"], "at_end": facts["gap_now"]}
        confidence = 0.75
    elif "window" in facts:
        tw, vw = facts["window"]
        summary = (
            f"Since step {fmt_step(tw.start_step)} the {train.name} improved by "
            f"{fmt(abs(tw.change))} while the {val.name} changed by {fmt(val.value(vw.change))}: "
            f"the gap between them widens. Validation was best at step {fmt_step(best_step)} "
            f"({fmt(val.value(best))})."
        )
        evidence["window"] = {"start": tw.start_step, "train_change": train.value(tw.change),
                              "val_change": val.value(vw.change)}
        confidence = 0.75
    else:
        since = f"has {worse} {pct} since" if pct else "has got worse since"
        summary = (
            f"The {val.name} {bottomed} at step {fmt_step(best_step)} ({fmt(val.value(best))}) and "
            f"{since} ({fmt(val.value(facts['level']))} over its last evaluations)"
        )
        n = facts["evaluations_after_best"]
        if facts["sparse"]:
            summary += f"; only {n} evaluation{'s' if n != 1 else ''} after the best, so treat it as a first sign"
        summary += "."
        evidence["evaluations_after_best"] = n
        confidence = 0.6 if facts["sparse"] else 0.85
    return _finding(
        "overfitting", [train, val],
        f"Overfitting: {val.name} best at step {fmt_step(best_step)}",
        summary,
        best_step, (best_step, w.final_step),
        evidence,
        specific=(
            f"The best {val.name} was at step {fmt_step(best_step)}: restore that checkpoint or stop there.",
        ),
        confidence=confidence,
    )


def data_problem_finding(train: View, val: View, tw: Trend, vw: Trend) -> Finding:
    t, w = train.stats, val.stats
    return _finding(
        "data_problem", [train, val],
        f"{train.name.capitalize()} is flat while {val.name} improves",
        f"Since step {fmt_step(tw.start_step)} the {train.name} changed by "
        f"{fmt(train.value(tw.change))} (near {fmt(train.value(t.end))}) while the {val.name} "
        f"improved by {fmt(abs(vw.change))} to {fmt(val.value(w.end))}: the training data looks "
        f"different from the validation data.",
        tw.start_step, (tw.start_step, t.final_step),
        {"train": _levels(train), "val": _levels(val),
         "window": {"start": tw.start_step, "train_change": train.value(tw.change),
                    "val_change": val.value(vw.change)}},
        confidence=0.7,
    )


def slow_finding(train: View, val: Optional[View] = None) -> Finding:
    st = train.stats
    views = [train] + ([val] if val is not None else [])
    return _finding(
        "slow_convergence", views,
        f"{train.name.capitalize()} falls slowly and steadily: learning rate likely too low",
        f"The {train.name} went from {fmt(train.value(st.start))} to {fmt(train.value(st.end))} "
        f"at an almost constant rate, with no sign of the fast early drop a well-tuned learning "
        f"rate gives.",
        st.recent.start_step, (st.first_step, st.final_step),
        {**_levels(train), "recent": _recent(train)},
        confidence=0.65,
    )


def still_learning_finding(views: List[View]) -> Finding:
    v = views[0]
    st = v.stats
    names = " and ".join(x.name for x in views)
    return _finding(
        "still_learning", views,
        "Still learning: train longer",
        f"The {names} {'are' if len(views) > 1 else 'is'} still improving over the last "
        f"{fmt_step(st.recent.end_step - st.recent.start_step)} steps "
        f"({v.name} {fmt(v.value(st.recent.change))} over that window).",
        st.final_step, (st.recent.start_step, st.final_step),
        {**_levels(v), "recent": _recent(v)},
        confidence=0.75,
    )


def plateau_or_converged(views: List[View], settings: Settings) -> Finding:
    """Flat after learning: a plateau only with evidence that the level is poor (the loss
    judged on held-out data closed under `plateau_gain` of its way to its floor); otherwise
    converged, whatever the floor of the loss may be."""
    v = views[0]
    judged = views[-1]  # validation when there is one: the level that matters
    st = v.stats
    closed = gap_closed(judged)
    names = " and ".join(x.name for x in views)
    if closed is not None and closed < settings.plateau_gain:
        js = judged.stats
        return _finding(
            "plateau", views,
            f"Plateau at a poor level since step {fmt_step(st.recent.start_step)}",
            f"The {names} {'are' if len(views) > 1 else 'is'} flat; the {judged.name} went from "
            f"{fmt(judged.value(js.start))} to {fmt(judged.value(js.end))}, only {closed:.0%} of "
            f"the way to its floor.",
            st.recent.start_step, (st.recent.start_step, st.final_step),
            {**_levels(judged), "gap_closed": closed},
            confidence=0.6,
        )
    summary = f"The {v.name} flattened at {fmt(v.value(st.end))} after improving from {fmt(v.value(st.start))}"
    if len(views) > 1:
        w = views[1]
        summary += f"; the {w.name} at {fmt(w.value(w.stats.end))} (from {fmt(w.value(w.stats.start))})"
    return _finding(
        "converged", views,
        "Converged",
        summary + ".",
        st.best_step, (st.recent.start_step, st.final_step),
        {**_levels(v), "gap_closed": gap_closed(v)},
        confidence=0.7,
    )


def natural_floor(v: View) -> Optional[float]:
    """The metric's best possible value in oriented units, where it is known: 0 for a loss that
    is never negative, the top (1 or 100) for an accuracy in [0, 1] (or [0, 100])."""
    real = v.sign * v.stats.bin_values
    if real.size == 0 or np.min(real) < 0:
        return None
    if v.sign > 0:
        return 0.0
    top = 1.0 if np.max(real) <= 1.0 else (100.0 if np.max(real) <= 100.0 else None)
    return None if top is None else -top


def gap_closed(v: View) -> Optional[float]:
    """Share of the way from the start to the metric's natural floor, where the floor is known."""
    st = v.stats
    floor = natural_floor(v)
    if floor is None:
        return None
    total = st.start - floor
    return float((st.start - st.end) / total) if total > 0 else None


# --- formatting ---------------------------------------------------------------------------------


def fmt_step(step) -> str:
    return "?" if step is None else f"{int(step):,}"


def fmt(value) -> str:
    if value is None:
        return "?"
    value = float(value)
    if not np.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def relative(before: float, after: float) -> str:
    """"18%" style relative change, or "" when the reference is zero."""
    if before == 0 or not np.isfinite(before) or not np.isfinite(after):
        return ""
    return f"{abs(after - before) / abs(before):.0%}"
