"""The one entry point shared by the CLI and the plugin: series in, report out."""

from __future__ import annotations

import logging
from typing import Iterable, List, Optional

from tb_lossdoctor.grouping import RunGroup, group_series
from tb_lossdoctor.report import REPORT_VERSION, group_status, order_runs, utc_now
from tb_lossdoctor.rules import diagnose_group, verdict_of
from tb_lossdoctor.series import Series
from tb_lossdoctor.settings import Settings

logger = logging.getLogger(__name__)

# A logdir can hold 100,000 unrecognised tags: list a sample, count them all.
MAX_IGNORED_LISTED = 1000


def diagnose(
    series: Iterable[Series],
    settings: Optional[Settings] = None,
    *,
    problems: Optional[List[dict]] = None,
) -> dict:
    """Diagnose every run group found in `series` and return the JSON-ready report.

    `problems` lists what a reader could not use ({run, tag, reason}); they are carried into the
    report so nothing is dropped silently. Groups with no recognised metric are left out of
    `runs` and listed under `ignored` instead.
    """
    settings = settings or Settings()
    series = list(series)
    problems = list(problems or [])
    runs, ignored = [], []
    for group in group_series(series):
        if not group.pairs:
            ignored.extend({"run": s.run, "tag": s.tag} for s in group.ignored)
            continue
        runs.append(diagnose_run_group(group, settings, problems))
    return {
        "version": REPORT_VERSION,
        "generated_at": utc_now(),
        "runs": order_runs(runs),
        "problems": problems,
        "ignored": ignored[:MAX_IGNORED_LISTED],
        "ignored_count": len(ignored),
        "sampled": any(s.sampled for s in series),
    }


def diagnose_run_group(group: RunGroup, settings: Settings, problems: List[dict]) -> dict:
    """The report entry of one run group; a failure becomes a listed problem, never a crash."""
    try:
        findings = [f.to_dict() for f in diagnose_group(group, settings)]
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
    }


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
        }
        for pair in group.pairs
        for c in pair.curves
    ]
    if group.learning_rate is not None:
        lr = group.learning_rate
        entries.append({"run": lr.run, "tag": lr.tag, "role": "lr", "metric": "learning_rate",
                        "direction": "", "points": len(lr), "sampled": lr.sampled})
    return entries
