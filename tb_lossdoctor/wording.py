"""The words of a finding: each builder renders the facts a decision in `rules` returned (and
the curves' levels) into a title, a summary, evidence and advice. A sentence here states only
what the decision checked.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from tb_lossdoctor.advice import advice_for
from tb_lossdoctor.chance import ChanceLevel
from tb_lossdoctor.codes import SEVERITY
from tb_lossdoctor.grouping import RunGroup
from tb_lossdoctor.naming import metric_label
from tb_lossdoctor.report import Finding
from tb_lossdoctor.settings import Settings
from tb_lossdoctor.trend import Trend
from tb_lossdoctor.views import View, gap_closed


def strength(z: float, points: int) -> float:
    """Confidence from the evidence: the effect in noise units `z` and the number of points that
    carry it. z / (z + 2) is 0 without an effect, 0.5 at two noise units and nears 1 beyond;
    points / (points + 3) discounts a verdict drawn from a handful of evaluations."""
    z = max(0.0, float(z)) if np.isfinite(z) else 10.0
    return round(z / (z + 2.0) * points / (points + 3.0), 2)


def _z(change: float, stderr: float) -> float:
    return abs(change) / stderr if stderr > 0 else 10.0


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
    return _finding(
        "nan", [v],
        f"{v.name.capitalize()} became {kind} at step {fmt_step(step)}",
        summary,
        step, (lo, step),
        {
            "first_nonfinite_step": step,
            "first_nonfinite_value": st.first_nonfinite_value,
            "last_finite_step": st.last_finite_step,
            "last_finite_value": v.value(st.last_finite_value) if st.finite_points else None,
            "nonfinite_fraction": round(st.nonfinite_fraction, 4),
            "recovered": st.recovered_after_nonfinite,
        },
        confidence=0.99,  # an observed fact, not an inference
    )


def blowup_finding(v: View, facts: dict, group: RunGroup) -> Finding:
    st = v.stats
    rise, jump_from, jump_to = facts["rise"], facts["jump_from"], facts["jump_to"]
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
    return _finding(
        "blowup", [v],
        f"{v.name.capitalize()} blew up at step {fmt_step(jump_to)}",
        summary,
        jump_to, (jump_from, jump_to),
        evidence,
        specific=(
            f"Restart from the checkpoint at or before step {fmt_step(st.best_step)} with a lower learning rate.",
        ),
        confidence=strength(_z(rise, st.noise), int((st.bin_steps >= jump_to).sum())),
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
    return _finding(
        "spikes", [v],
        f"{len(spikes)} spike{'s' if len(spikes) > 1 else ''} in the {v.name}",
        f"The {v.name} jumped {fmt(worst[1])} above its local level at step "
        f"{fmt_step(worst[0])} and came back; {len(spikes)} such spike(s) in all.",
        worst[0], (min(steps), max(steps)),
        {"spike_steps": steps[:20], "largest_spike": worst[1], "count": len(spikes)},
        specific=(f"Inspect the batch at step {fmt_step(worst[0])} first.",),
        confidence=strength(_z(worst[1], v.stats.noise), len(spikes) + 2),
    )


def too_early_finding(v: View, settings: Settings) -> Finding:
    st = v.stats
    return _finding(
        "too_early", [v],
        f"Too early to judge: {st.finite_points} point{'s' if st.finite_points != 1 else ''} so far",
        f"The {v.name} has {st.finite_points} finite point(s) up to step "
        f"{fmt_step(st.last_finite_step)}; at least {settings.min_points} are needed to call a trend.",
        st.last_finite_step, (st.first_step, st.final_step),
        {"points": st.finite_points, "needed": settings.min_points},
        # The fewer the points, the surer it is too early to tell.
        confidence=round(max(0.0, 1.0 - st.finite_points / (2.0 * settings.min_points)), 2),
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
    specific = ()
    if chance is not None and st.start > 2.0 * chance.value:
        # It started far above chance and fell to it: it collapsed, it did not stay dead.
        specific = (
            f"The {train.name} started at {fmt(train.value(st.start))}, far above chance, then collapsed "
            f"to it: too high a learning rate is the usual cause; lower it (try /10).",
        )
    return _finding(
        "not_learning", views,
        f"{train.name.capitalize()} {'is at chance level' if chance else 'has not moved since the start'}",
        summary,
        st.first_step, (st.first_step, st.final_step),
        evidence,
        specific=specific,
        # At chance, two readings agreed; otherwise the points the flat curve rests on.
        confidence=strength(10.0 if chance else 3.0, st.finite_points),
    )


def oscillation_finding(v: View) -> Finding:
    """Swings of the smoothed curve (what the decision measured), against what it improved."""
    st = v.stats
    r = st.recent
    swing = st.smooth_noise
    return _finding(
        "oscillation", [v],
        f"{v.name.capitalize()} swings without converging",
        f"The smoothed {v.name} jumps by about {fmt(swing)} from one point to the next, "
        f"{swing / st.improvement:.0%} of the {fmt(st.improvement)} it improved in all."
        if st.improvement > 0 else
        f"The smoothed {v.name} jumps by about {fmt(swing)} from one point to the next without improving.",
        r.start_step, (r.start_step, r.end_step),
        {**_levels(v), "swing": swing, "improvement": st.improvement,
         "swing_over_improvement": swing / st.improvement if st.improvement > 0 else None},
        confidence=strength(4.0 * swing / st.improvement if st.improvement > 0 else 10.0, st.bin_values.size),
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
        confidence=strength(_z(st.recent.change, st.recent.stderr), int((st.bin_steps > st.best_step).sum())),
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
        confidence = strength(_z(facts["gap_now"] - facts["gap_then"], w.noise), w.finite_points)
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
        confidence = strength(_z(vw.change - tw.change, float(np.hypot(tw.stderr, vw.stderr))),
                              int((w.bin_steps >= tw.start_step).sum()))
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
        confidence = strength(_z(facts["rise"], facts["noise"]), n)
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
        confidence=strength(_z(tw.change - vw.change, float(np.hypot(tw.stderr, vw.stderr))),
                            int((w.bin_steps >= tw.start_step).sum())),
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
        confidence=strength(_z(st.recent.change, st.recent.stderr), st.bin_values.size),
    )


def still_learning_finding(views: List[View], window: Optional[Tuple[Trend, Trend]] = None,
                           too_noisy_from: Optional[int] = None) -> Finding:
    """Still improving: over its own recent window (one curve), or, for a training/validation
    pair, over the `window` both were judged on (their two trends there; `too_noisy_from`: the
    step from which validation alone was too noisy to tell, when the window was widened)."""
    v = views[0]
    st = v.stats
    if window is not None:
        return _pair_still_learning(views[0], views[1], *window, too_noisy_from)
    return _finding(
        "still_learning", views,
        "Still learning: train longer",
        f"The {v.name} is still improving over the last "
        f"{fmt_step(st.recent.end_step - st.recent.start_step)} steps "
        f"({v.name} {fmt(v.value(st.recent.change))} over that window).",
        st.final_step, (st.recent.start_step, st.final_step),
        {**_levels(v), "recent": _recent(v)},
        confidence=strength(_z(st.recent.change, st.recent.stderr),
                            int((st.bin_steps >= st.recent.start_step).sum())),
    )


def _pair_still_learning(train: View, val: View, tw: Trend, vw: Trend, too_noisy_from: Optional[int]) -> Finding:
    t, w = train.stats, val.stats
    window = {"start": tw.start_step, "train_change": train.value(tw.change), "val_change": val.value(vw.change)}
    summary = (
        f"Since step {fmt_step(tw.start_step)} the {train.name} changed by "
        f"{fmt(train.value(tw.change))} and the {val.name} by {fmt(val.value(vw.change))}: "
        f"validation still improves along with training"
    )
    if too_noisy_from is not None:  # why the window reaches back that far
        window["too_noisy_from"] = too_noisy_from
        summary += f" (its points since step {fmt_step(too_noisy_from)} alone are too noisy to tell)"
    summary += "."
    return _finding(
        "still_learning", [train, val],
        "Still learning: train longer",
        summary,
        t.final_step, (tw.start_step, t.final_step),
        {**_levels(train), "val": _levels(val), "recent": _recent(train), "window": window},
        # The weaker of the two: validation's fall is what says the model still generalises better.
        confidence=strength(min(_z(tw.change, tw.stderr), _z(vw.change, vw.stderr)),
                            int((w.bin_steps >= tw.start_step).sum())),
    )


def plateau_finding(views: List[View], judged: View, closed: float) -> Finding:
    v = views[0]
    st, js = v.stats, judged.stats
    names = " and ".join(x.name for x in views)
    return _finding(
        "plateau", views,
        f"Plateau at a poor level since step {fmt_step(st.recent.start_step)}",
        f"The {names} {'are' if len(views) > 1 else 'is'} flat; the {judged.name} went from "
        f"{fmt(judged.value(js.start))} to {fmt(judged.value(js.end))}, only {closed:.0%} of "
        f"the way to its floor.",
        st.recent.start_step, (st.recent.start_step, st.final_step),
        {**_levels(judged), "gap_closed": closed},
        # How far from the floor it stayed, in units of what it did learn.
        confidence=strength(2.0 * (1.0 - closed) / max(closed, 0.05), js.bin_values.size),
    )


def converged_finding(views: List[View], training_falls: bool = False) -> Finding:
    """Flat after learning. `training_falls`: training still falls significantly over the
    window where validation did not follow, so only validation is said to have flattened."""
    v = views[0]
    st = v.stats
    ends = f"at {fmt(v.value(st.end))} after improving from {fmt(v.value(st.start))}"
    if len(views) > 1 and training_falls:
        w = views[1]
        summary = (f"The {w.name} flattened at {fmt(w.value(w.stats.end))} (from {fmt(w.value(w.stats.start))}); "
                   f"the {v.name} still creeps down, to {fmt(v.value(st.end))}, without it")
    elif len(views) > 1:
        w = views[1]
        summary = (f"The {v.name} flattened {ends}; the {w.name} at {fmt(w.value(w.stats.end))} "
                   f"(from {fmt(w.value(w.stats.start))})")
    else:
        summary = f"The {v.name} flattened {ends}"
    return _finding(
        "converged", views,
        "Converged",
        summary + ".",
        st.best_step, (st.recent.start_step, st.final_step),
        {**_levels(v), "gap_closed": gap_closed(v)},
        # Flat: what it improved in all, against its last stretch's change plus that change's noise.
        confidence=strength(st.improvement / (abs(st.recent.change) + st.recent.stderr + 1e-12),
                            int((st.bin_steps >= st.recent.start_step).sum())),
    )


def with_holds_since(finding: Finding, judged: View) -> Finding:
    """Say since when the verdict holds and over how many evaluations of the curve it was read
    from: its key span starts there (the best validation step for overfitting)."""
    since = finding.step_range[0] if finding.step_range else finding.step
    if since is None:
        return finding
    steps = judged.curve.series.steps
    count = int((steps >= since).sum())
    finding.evidence["holds_since"] = {"step": int(since), "evaluations": count}
    finding.summary += f" Holds since step {fmt_step(since)} ({count} evaluation{'s' if count != 1 else ''})."
    return finding


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
