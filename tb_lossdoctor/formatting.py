"""Human rendering of a report (shared/spec/report.md) as plain/ANSI text, and the helpers the
Markdown view (`markdown_view.py`) shares with it.

Pure functions: report dict in, string out. Run and tag names are user data (and engine titles
may quote them), so text output strips control characters (no terminal escape injection).
"""

from __future__ import annotations

import os
import re
from typing import Iterable, List, Optional

from tb_lossdoctor import sweep_view
from tb_lossdoctor.codes import EVENTS, FATAL_EVENTS
from tb_lossdoctor.report import SEVERITY_RANK

STATUSES = ("error", "warning", "ok")

# -- shared helpers --------------------------------------------------------------------------


def status_counts(report: dict) -> dict:
    counts = {s: 0 for s in STATUSES}
    for run in report.get("runs", []):
        status = run.get("status", "ok")
        counts[status if status in counts else "ok"] += 1
    return counts


def plural(n: int, noun: str) -> str:
    """"run" for 1, "runs" otherwise (the nouns used here all take an s)."""
    return noun if n == 1 else noun + "s"


def summary_line(report: dict) -> str:
    """"3 runs: 1 error, 2 warnings, 0 ok"."""
    n = len(report.get("runs", []))
    c = status_counts(report)
    return (f"{n} {plural(n, 'run')}: {c['error']} {plural(c['error'], 'error')}, "
            f"{c['warning']} {plural(c['warning'], 'warning')}, {c['ok']} ok")


def _fmt_step(step) -> str:
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        return str(step)
    return f"{int(step):,}"


def _step_text(finding: dict) -> str:
    step, rng = finding.get("step"), finding.get("step_range")
    parts = []
    if step is not None:
        parts.append(f"step {_fmt_step(step)}")
    if rng and len(rng) == 2 and rng[0] != rng[1]:
        parts.append(f"steps {_fmt_step(rng[0])}-{_fmt_step(rng[1])}")
    return ", ".join(parts)


def _sorted_findings(findings: Iterable[dict]) -> List[dict]:
    """The run's verdict first (what a reader wants), then its events, worst first."""
    return sorted(findings, key=lambda f: (f.get("code") in EVENTS, -SEVERITY_RANK.get(f.get("severity"), 0)))


def verdict_text(run: dict) -> str:
    """"overfitting", or what ended the run ("died: nan") when it has no verdict."""
    if run.get("verdict"):
        return str(run["verdict"])
    if "verdict" not in run:  # a report from before the field: the first non-event finding
        found = [f.get("code") for f in run.get("findings", []) if f.get("code") not in EVENTS]
        if found:
            return str(found[0])
    fatal = [f.get("code") for f in run.get("findings", []) if f.get("code") in FATAL_EVENTS]
    return f"died: {fatal[0]}" if fatal else "-"


def _events(run: dict) -> List[str]:
    return [str(f.get("code", "")) for f in _sorted_findings(run.get("findings", [])) if f.get("code") in EVENTS]


def _problem_text(p: dict) -> str:
    where = ":".join(x for x in (p.get("run") or "", p.get("tag") or "") if x)
    return f"{where}: {p.get('reason', '')}" if where else str(p.get("reason", ""))


def ignored_names(report: dict, shown: int) -> str:
    """The first `shown` series the report did not diagnose, as printable `run:tag, ...`."""
    items = (report.get("ignored") or [])[:shown]
    return ", ".join(clean(_problem_text({**i, "reason": ""}).rstrip(": ")) for i in items)


# -- text ------------------------------------------------------------------------------------

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_ANSI = {
    "error": "\033[1;31m",
    "warning": "\033[1;33m",
    "info": "\033[36m",
    "ok": "\033[32m",
    "dim": "\033[2m",
    "bold": "\033[1m",
}
_RESET = "\033[0m"
_BADGE = {"error": "ERROR", "warning": "WARN", "ok": "OK", "info": "INFO"}


def clean(text) -> str:
    """Make user data safe to print: control characters (ANSI escapes, bidi overrides) shown as
    escapes, newlines flattened to spaces."""
    text = str(text).replace("\r\n", " ").replace("\n", " ")
    return _CONTROL_RE.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def render_text(report: dict, *, color: bool = False, info: Optional[dict] = None) -> str:
    """Terminal view: summary line, run groups worst first, then notes and problems."""

    def paint(text: str, style: str) -> str:
        return f"{_ANSI[style]}{text}{_RESET}" if color and style in _ANSI else text

    out = [paint(f"lossdoctor: {summary_line(report)}", "bold")]
    for run in report.get("runs", []):
        status = run.get("status", "ok")
        badge = paint(f"[{_BADGE.get(status, status.upper())}]".ljust(9), status)
        name = clean(run.get("run", ""))
        if name == ".":  # TensorBoard's name for the logdir itself: name it after its folder
            folder = os.path.basename(os.path.normpath(str((info or {}).get("logdir", ""))))
            name = f"{clean(folder)} (the logdir itself)" if folder and folder != "." else ". (the logdir itself)"
        findings = _sorted_findings(run.get("findings", []))
        if status == "ok":
            notes = "; ".join(clean(f.get("title", "")) for f in findings)
            n = len(run.get("series", []))
            detail = notes or f"no problem found ({n} series)"
            out.append(f"{badge}{name} - {detail}")
            continue
        out.append("")
        out.append(f"{badge}{paint(name, 'bold')} - verdict: {paint(clean(verdict_text(run)), status)}")
        for f in findings:
            sev = f.get("severity", "info")
            head = f"  {paint(sev.upper(), sev)} {clean(f.get('title', ''))}"
            code = f.get("code")
            if code:
                head += paint(f" [{clean(code)}]", "dim")
            out.append(head)
            if f.get("summary"):
                out.append(f"      {clean(f['summary'])}")
            where = _step_text(f)
            if where:
                out.append(f"      key step: {where}")
            if f.get("tags"):
                out.append(paint(f"      curves: {', '.join(clean(t) for t in f['tags'])}", "dim"))
            for tip in f.get("advice", []):
                out.append(f"      - {clean(tip)}")
        for s in run.get("series", []):  # how a reader or the pairing changed a curve
            for note in s.get("notes", []):
                out.append(paint(f"  note: {clean(s.get('run', ''))}:{clean(s.get('tag', ''))}: {clean(note)}", "dim"))
    if not report.get("runs"):
        out.append("no run groups to diagnose")
    out.extend(sweep_view.text_lines(report, paint))
    notes = []
    if report.get("sampled"):
        notes.append(
            "note: some curves were sampled by TensorBoard (not every point was kept); "
            "steps are approximate."
        )
    ignored = report.get("ignored") or []
    count = report.get("ignored_count", len(ignored))
    if ignored:
        shown = ignored_names(report, 3)
        more = f", ... ({count - 3} more)" if count > 3 else ""
        notes.append(f"not diagnosed: {count} series with no recognised training metric ({shown}{more})")
    if info and info.get("reader"):
        used = "TensorBoard data server" if info["reader"] == "server" else "Python event reader"
        line = f"read with the {used}"
        if info.get("seconds") is not None:
            line += f" in {info['seconds']:.2f} s"
        if info.get("fallback_reason"):
            line += f" (data server not used: {clean(info['fallback_reason'])})"
        notes.append(line)
    problems = report.get("problems") or []
    if notes or problems:
        out.append("")
        out.extend(paint(n, "dim") for n in notes)
    if problems:
        out.append(f"could not use {len(problems)} {plural(len(problems), 'item')}:")
        out.extend(f"  - {clean(_problem_text(p))}" for p in problems)
    return "\n".join(out) + "\n"
