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
from tb_lossdoctor.grouping import Curve, MetricPair, RunGroup
from tb_lossdoctor.naming import describe_role, metric_label
from tb_lossdoctor.report import Finding
from tb_lossdoctor.settings import Settings
from tb_lossdoctor.trend import FALLING, FLAT, RISING, CurveStats, analyse

SEVERITY = {
    "nan": "error", "blowup": "error", "diverging": "error", "not_learning": "error",
    "oscillation": "warning", "overfitting": "warning", "data_problem": "warning",
    "plateau": "warning", "slow_convergence": "warning", "spikes": "warning",
    "still_learning": "info", "converged": "info", "too_early": "info",
}


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
    """All findings of one run group, most severe first, one per code."""
    findings: List[Finding] = []
    for index, pair in enumerate(group.pairs):
        if index > 0 and not pair.is_loss and all(np.isfinite(c.series.values).all() for c in pair.curves):
            continue  # a finite secondary metric adds nothing: skip its analysis
        views = [view_of(c, pair, settings) for c in pair.curves]
        findings.extend(nan_finding(v) for v in views if v.stats.first_nonfinite_step is not None)
        if index == 0:
            # The table is read on the primary metric (`loss`, else the first loss with a
            # validation curve): secondary metrics would repeat or muddle its verdict.
            findings.extend(pair_findings(pair, views, group, settings))
        elif pair.is_loss:
            findings.extend(f for f in map(lambda v: blowup_finding(v, group, settings), views) if f)
    return merge_findings(findings)


def merge_findings(findings: List[Finding]) -> List[Finding]:
    """One finding per code (the first, from the primary metric, wins); errors silence the
    reassuring info findings, which would contradict them."""
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
    out = list(kept.values())
    if any(f.severity in ("error", "warning") for f in out):
        out = [f for f in out if f.code not in ("converged", "still_learning", "too_early")]
    rank = {"error": 0, "warning": 1, "info": 2}
    return sorted(out, key=lambda f: rank[f.severity])


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
        summary += (
            f"; {st.nonfinite_fraction:.0%} of its points are non-finite."
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
    if main.stats.finite_points < settings.min_points or main.stats.recent is None:
        if not out and main.stats.first_nonfinite_step is None:
            out.append(too_early_finding(main, settings))
        return out
    if out and out[0].code == "blowup":
        return out
    if main.stats.first_nonfinite_step is not None and not main.stats.recovered_after_nonfinite:
        return out  # the run died: a trend verdict on what came before would be beside the point
    usable_val = (
        val is not None
        and main is train
        and val.stats.finite_points >= settings.min_val_points
        and val.stats.recent is not None
    )
    finding = table_finding(train, val, settings) if usable_val else single_finding(main, settings)
    if finding:
        out.append(finding)
    return out


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
    """It learned something, but its point-to-point swings are at least `oscillation_ratio` of
    everything it learned (a curve that never moved beyond its noise is `not_learning`)."""
    return learned(st, settings) and st.noise >= settings.oscillation_ratio * st.improvement


def swinging_without_learning(v: View, settings: Settings) -> bool:
    """Never improved, but jumps by a good share of its distance to the floor: too high a
    learning rate keeps it bouncing (a dead network sits still instead)."""
    st = v.stats
    floor = natural_floor(v)
    if floor is None:
        return False
    distance = st.start - floor
    return distance > 0 and st.noise >= settings.swing_of_level * distance


def sustained_rise(st: CurveStats) -> bool:
    """Rising recently and, significantly, all the way from the best point: a steady climb, not
    the upswing of an oscillation."""
    return (
        st.recent is not None
        and st.recent.direction == RISING
        and st.since_best is not None
        and st.since_best.direction == RISING
    )


def single_finding(v: View, settings: Settings) -> Optional[Finding]:
    """Verdict from one curve's own trend (no usable validation curve)."""
    st = v.stats
    if oscillating(st, settings):
        return oscillation_finding(v)
    if sustained_rise(st):
        return diverging_finding([v])
    if not learned(st, settings):
        return oscillation_finding(v) if swinging_without_learning(v, settings) else not_learning_finding(v)
    direction = st.recent.direction
    if direction == RISING:  # an upswing that is not a steady climb
        direction = FLAT
    if direction == FALLING:
        if is_slow(v, settings):
            return slow_finding(v)
        return still_learning_finding([v])
    return plateau_or_converged([v], settings)


def table_finding(train: View, val: View, settings: Settings) -> Optional[Finding]:
    """The checklist's train/validation table, on the recent trends of both curves."""
    t, w = train.stats, val.stats
    if oscillating(t, settings):
        return oscillation_finding(train)
    if sustained_rise(t):
        return diverging_finding([train, val] if sustained_rise(w) else [train])
    if not learned(t, settings) and not learned(w, settings):
        if swinging_without_learning(train, settings):
            return oscillation_finding(train)
        return not_learning_finding(train, val)
    # Both curves measure the same metric in the same units: judge them with one yardstick.
    common_range = max(t.value_range, w.value_range)
    td = t.recent.direction_against(common_range, settings)
    vd = w.recent.direction_against(common_range, settings)
    if td == RISING:  # an upswing that is not a steady climb (that was handled above)
        td = FLAT
    if val_has_regressed(w, settings):
        return overfitting_finding(train, val)
    if td == FALLING and vd == FLAT and val_stalled(w, settings):
        return overfitting_finding(train, val)
    if td == FLAT and vd == FALLING and train_flatter_than_val(t, w, settings):
        return data_problem_finding(train, val)
    if td == FLAT and vd == FALLING:
        td = FALLING  # train is only noisier: its change is compatible with validation's
    if td == FALLING:
        if is_slow(train, settings):
            return slow_finding(train, val)
        return still_learning_finding([train, val])
    return plateau_or_converged([train, val], settings)


def val_has_regressed(w: CurveStats, settings: Settings) -> bool:
    """Validation is getting worse: rising now, or rising significantly since a best point
    that lies well back in the run."""
    if w.recent.direction == RISING and w.end > w.best:
        return True
    return (
        val_stalled(w, settings)
        and w.since_best is not None
        and w.since_best.direction == RISING
        and w.end - w.best > settings.regression_min * w.value_range
    )


def train_flatter_than_val(t: CurveStats, w: CurveStats, settings: Settings) -> bool:
    """Training improved less than half as much as validation over the run, and its recent
    change is significantly smaller than validation's fall (same metric, same units): not a
    converging run whose noisier training curve merely hides the same trend."""
    if t.improvement >= 0.5 * w.improvement:
        return False
    gap = w.recent.change - t.recent.change  # negative when validation falls more
    combined = float(np.hypot(t.recent.stderr, w.recent.stderr))
    return gap < -settings.trend_z * combined


def val_stalled(w: CurveStats, settings: Settings) -> bool:
    return w.best_step < w.final_step - settings.stall_fraction * w.span


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


def not_learning_finding(train: View, val: Optional[View] = None) -> Finding:
    st = train.stats
    views = [train] + ([val] if val is not None else [])
    return _finding(
        "not_learning", views,
        f"{train.name.capitalize()} has not moved since the start",
        f"The {train.name} stayed at about {fmt(train.value(st.start))} from step "
        f"{fmt_step(st.first_step)} to {fmt_step(st.final_step)}: its best improvement "
        f"({fmt(st.improvement)}) is within its own noise.",
        st.first_step, (st.first_step, st.final_step),
        {**_levels(train), "improvement": st.improvement, "noise": st.noise},
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


def overfitting_finding(train: View, val: View) -> Finding:
    """Located at the best logged validation point: the checkpoint to keep."""
    w = val.stats
    best, best_step = w.best_point, w.best_point_step
    rise = w.end - best
    pct = relative(val.value(best), val.value(w.end))
    worse = "risen" if val.sign > 0 else "fallen"
    since = f"has {worse} {pct} since" if rise > 0 and pct else "has not improved since"
    bottomed = "bottomed" if val.sign > 0 else "peaked"
    return _finding(
        "overfitting", [train, val],
        f"Overfitting: {val.name} best at step {fmt_step(best_step)}",
        f"The {val.name} {bottomed} at step {fmt_step(best_step)} ({fmt(val.value(best))}) and "
        f"{since} ({fmt(val.value(w.end))} at step {fmt_step(w.final_step)}), while the "
        f"{train.name} kept improving to {fmt(train.value(train.stats.end))}.",
        best_step, (best_step, w.final_step),
        {"best_val_step": best_step, "best_val": val.value(best), "val_end": val.value(w.end),
         "val_change_since_best": val.value(rise), "train": _levels(train), "val_recent": _recent(val)},
        specific=(
            f"The best {val.name} was at step {fmt_step(best_step)}: restore that checkpoint or stop there.",
        ),
        confidence=0.85,
    )


def data_problem_finding(train: View, val: View) -> Finding:
    t, w = train.stats, val.stats
    return _finding(
        "data_problem", [train, val],
        f"{train.name.capitalize()} is flat while {val.name} improves",
        f"Since step {fmt_step(t.recent.start_step)} the {train.name} has stayed near "
        f"{fmt(train.value(t.end))} while the {val.name} kept improving to "
        f"{fmt(val.value(w.end))}: the training data looks different from the validation data.",
        t.recent.start_step, (t.recent.start_step, t.final_step),
        {"train": _levels(train), "val": _levels(val), "train_recent": _recent(train),
         "val_recent": _recent(val)},
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
    v = views[0]
    st = v.stats
    closed = gap_closed(v)
    names = " and ".join(x.name for x in views)
    if closed is not None and closed < settings.plateau_gap_closed:
        return _finding(
            "plateau", views,
            f"Plateau at a poor level since step {fmt_step(st.recent.start_step)}",
            f"The {names} {'are' if len(views) > 1 else 'is'} flat; the {v.name} went from "
            f"{fmt(v.value(st.start))} to {fmt(v.value(st.end))}, only {closed:.0%} of the way to "
            f"its floor.",
            st.recent.start_step, (st.recent.start_step, st.final_step),
            {**_levels(v), "gap_closed": closed},
            confidence=0.6,
        )
    return _finding(
        "converged", views,
        "Converged",
        f"The {names} flattened at {fmt(v.value(st.end))} after improving from "
        f"{fmt(v.value(st.start))}.",
        st.best_step, (st.recent.start_step, st.final_step),
        {**_levels(v), "gap_closed": closed},
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
