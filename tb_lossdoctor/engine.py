"""The one entry point shared by the CLI and the plugin: series in, report out."""

from __future__ import annotations

import itertools
import logging

import numpy as np
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from tb_lossdoctor.grouping import RunGroup, group_series
from tb_lossdoctor.report import REPORT_VERSION, group_status, order_runs, utc_now
from tb_lossdoctor.rules import analyse_groups, diagnose_group, verdict_of
from tb_lossdoctor.series import Series
from tb_lossdoctor.settings import Settings
from tb_lossdoctor.trend import CurveStats

logger = logging.getLogger(__name__)

# A logdir can hold 100,000 unrecognised tags: list a sample, count them all.
MAX_IGNORED_LISTED = 1000
# Run groups whose curves are analysed together (`analyse_groups`): enough curves per step
# sequence to share the per-call cost, few enough that their stats stay small in memory.
BATCH_GROUPS = 100


def diagnose(
    series: Iterable[Series],
    settings: Optional[Settings] = None,
    *,
    problems: Optional[List[dict]] = None,
    hparams: Optional[Mapping[str, Mapping]] = None,
    pool=None,
) -> dict:
    """Diagnose every run group found in `series` and return the JSON-ready report.

    `hparams` are the HParams records a reader found, {TensorBoard run: {name: value}}; with the
    run names and learning-rate curves they feed the cross-run `sweep` (see `add_sweep`).

    `problems` lists what a reader could not use ({run, tag, reason}); they are carried into the
    report so nothing is dropped silently. Groups with no recognised metric are left out of
    `runs` and listed under `ignored` instead.

    `pool` (a `parallel.GroupPool`) spreads the run groups over several processes; the report
    is the same.
    """
    settings = settings or Settings()
    series = list(series)
    problems = list(problems or [])
    groups, ignored = split_groups(series)
    if pool is not None:
        runs = pool.diagnose_groups(groups, settings, problems)
    else:
        runs = run_group_entries(groups, settings, problems)
    return whole_report(series, runs, problems, ignored, hparams)


def diagnose_each(items: Sequence[Tuple[Sequence[Series], Sequence[dict]]], settings: Optional[Settings] = None) -> List[dict]:
    """`diagnose(series, settings, problems=problems)` of each (series, problems) item, in order,
    with the curves of every item analysed together (`BATCH_GROUPS` run groups at a time): the
    plugin diagnoses its run groups one report each, a chunk of them per call."""
    settings = settings or Settings()
    prepared = [(list(series), list(problems or []), *split_groups(series)) for series, problems in items]
    diagnosed = iter(diagnose_run_groups([g for _, _, groups, _ in prepared for g in groups], settings))
    reports = []
    for series, problems, groups, ignored in prepared:
        runs = []
        for entry, added in itertools.islice(diagnosed, len(groups)):
            runs.append(entry)
            problems.extend(added)
        reports.append(whole_report(series, runs, problems, ignored))
    return reports


def split_groups(series: Sequence[Series]) -> Tuple[List[RunGroup], List[dict]]:
    """The run groups with a recognised metric, and the {run, tag} of every other series."""
    groups, ignored = [], []
    for group in group_series(series):
        if group.pairs:
            groups.append(group)
        else:
            ignored.extend({"run": s.run, "tag": s.tag} for s in group.ignored)
    return groups, ignored


def whole_report(series: Sequence[Series], runs: List[dict], problems: List[dict], ignored: List[dict],
                 hparams: Optional[Mapping[str, Mapping]] = None) -> dict:
    """The report around the run groups' entries (ordered here), with the sweep."""
    return add_sweep({
        "version": REPORT_VERSION,
        "generated_at": utc_now(),
        "runs": order_runs(runs),
        "problems": problems,
        "ignored": ignored[:MAX_IGNORED_LISTED],
        "ignored_count": len(ignored),
        "sampled": any(s.sampled for s in series),
    }, hparams)


def add_sweep(report: dict, hparams: Optional[Mapping[str, Mapping]] = None) -> dict:
    """The report with each run's `hparams` (HParams records, then its name, then its learning-rate
    curve) and the top-level `sweep` (None when there is nothing to compare). Pure: run entries
    are copied, never changed in place, and a second call gives the same result."""
    from tb_lossdoctor import hparams as hp
    from tb_lossdoctor.sweep import analyse

    names = [run["run"] for run in report.get("runs", [])]
    records = hp.assign_records(hparams or {}, names)
    runs = [swept_entry(run, records.get(run["run"]), hp.is_record_child(run["run"], names))
            for run in report.get("runs", [])]
    # Words of the names that become settings only across the set (a `variant`, a flag): part of
    # the sweep, not of each run's own entry, which must not depend on the other runs.
    words = hp.free_word_hparams([n for n in names if not hp.is_record_child(n, names)])
    return dict(report, runs=runs, sweep=analyse(runs, words))


def run_group_entries(groups: Sequence[RunGroup], settings: Settings, problems: List[dict]) -> List[dict]:
    """The report entries of `groups` (`diagnose_run_groups`), their problems appended to
    `problems`."""
    entries = []
    for entry, added in diagnose_run_groups(groups, settings):
        entries.append(entry)
        problems.extend(added)
    return entries


def swept_entry(run: dict, record: Optional[Mapping], child: bool) -> dict:
    """A copy of one run's entry with its `hparams` and `hparam_sources` (its HParams `record`,
    then its name, then its learning-rate curve); none for a record `child` folder."""
    from tb_lossdoctor import hparams as hp

    run = {k: v for k, v in run.items() if k not in ("hparams", "hparam_sources")}
    values, sources = hp.merge((hp.SOURCE_RECORD, record or {}),
                               (hp.SOURCE_NAME, hp.parse_name(run["run"]).values),
                               (hp.SOURCE_CURVE, run.get("lr_curve") or {}))
    if values and not child:
        run["hparams"], run["hparam_sources"] = values, sources
    return run


def diagnose_run_groups(groups: Sequence[RunGroup], settings: Settings) -> List[Tuple[dict, List[dict]]]:
    """(report entry, problems it added) of each run group, in order: the same as
    `diagnose_run_group` one by one, with the curves of `BATCH_GROUPS` groups at a time analysed
    together first."""
    out: List[Tuple[dict, List[dict]]] = []
    for start in range(0, len(groups), BATCH_GROUPS):
        chunk = groups[start : start + BATCH_GROUPS]
        known = _known_stats(chunk, settings)
        for group in chunk:
            added: List[dict] = []
            out.append((diagnose_run_group(group, settings, added, known), added))
    return out


def _known_stats(groups: Sequence[RunGroup], settings: Settings) -> Dict[int, CurveStats]:
    """`analyse_groups`, or nothing when it fails: each group then analyses its own curves, and
    a failure stays that group's listed problem."""
    try:
        return analyse_groups(groups, settings)
    except Exception:
        logger.warning("analysing run groups together failed; analysing them one by one", exc_info=True)
        return {}


def diagnose_run_group(
    group: RunGroup, settings: Settings, problems: List[dict], known: Optional[Dict[int, CurveStats]] = None
) -> dict:
    """The report entry of one run group; a failure becomes a listed problem, never a crash.
    `known`: stats already computed for its curves (`rules.analyse_groups`)."""
    try:
        findings = [f.to_dict() for f in diagnose_group(group, settings, known)]
    except Exception as exc:  # a bug on one group must not lose the other groups' results
        logger.exception("diagnosis failed for run group %r", group.name)
        problems.append({"run": group.name, "tag": "", "reason": f"diagnosis failed: {exc!r}"})
        findings = []
    return {
        "run": group.name,
        "status": group_status(findings),
        "verdict": verdict_of(findings),
        "series": series_entries(group),
        "findings": findings,
        **sweep_facts(group),
    }


def sweep_facts(group: RunGroup) -> dict:
    """What the cross-run sweep compares beyond the verdict: the learning-rate curve's peak,
    final value and warm-up (`lr_curve`), and where the primary metric's validation curve is
    best (`validation_best`: step, value, metric, direction). Absent when not logged."""
    from tb_lossdoctor.hparams import lr_curve_hparams

    out: dict = {}
    if group.learning_rate is not None and len(group.learning_rate):
        lr = lr_curve_hparams(group.learning_rate.steps, group.learning_rate.values)
        if lr:
            out["lr_curve"] = lr
    val = next((p for p in group.pairs if p.val is not None), None)
    if val is not None:
        s = val.val.series
        finite = np.isfinite(s.values)
        if finite.any():
            v = np.where(finite, s.values, np.inf if val.direction == "min" else -np.inf)
            i = int(np.argmin(v) if val.direction == "min" else np.argmax(v))
            out["validation_best"] = {"metric": val.metric, "direction": val.direction,
                                      "step": int(s.steps[i]), "value": float(f"{s.values[i]:.6g}")}
    return out


def series_entries(group: RunGroup) -> List[dict]:
    entries = [
        {
            "run": c.series.run,
            "tag": c.series.tag,
            "role": c.role,
            "metric": pair.metric,
            "direction": pair.direction,
            "points": len(c.series),
            "sampled": c.series.sampled,
            **({"notes": list(c.series.notes)} if c.series.notes else {}),
            **({"axis": {"run": c.series.axis[0], "tag": c.series.axis[1]}} if c.series.axis else {}),
        }
        for pair in group.pairs
        for c in pair.curves
    ]
    if group.learning_rate is not None:
        lr = group.learning_rate
        entries.append({"run": lr.run, "tag": lr.tag, "role": "lr", "metric": "learning_rate",
                        "direction": "", "points": len(lr), "sampled": lr.sampled})
    return entries
