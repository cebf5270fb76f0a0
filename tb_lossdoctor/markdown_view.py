"""GitHub-flavoured Markdown view of a report, sized for CI job summaries and PR comments.

GitHub refuses a comment body over 65,536 characters, so the view leads with the runs that need
attention (a table, then a section per run), collapses the runs with no problem into a
`<details>` block, and stops adding runs before the limit, saying how many were left out and how
to see them. Run and tag names are user data: every one goes through `md_escape`, so the only
HTML in the output is our own `<details>`/`<summary>`.
"""

from __future__ import annotations

from typing import List, Optional

from tb_lossdoctor import sweep_view
from tb_lossdoctor.formatting import (
    _events,
    _problem_text,
    _sorted_findings,
    _step_text,
    clean,
    plural,
    summary_line,
    verdict_text,
)

GITHUB_LIMIT = 65_536  # characters in a GitHub comment body
DEFAULT_LIMIT = 60_000  # room to spare for what a CI step adds around the report
MAX_PROBLEMS_LISTED = 20

_MD_ICON = {"error": "\u274c", "warning": "\u26a0\ufe0f", "ok": "\u2705", "info": "\u2139\ufe0f"}
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "|": "&#124;"}
# Every other ASCII punctuation character may start Markdown syntax; CommonMark lets any of them
# be backslash-escaped.
_MD_BACKSLASH = set("\\`*_{}[]()#+-.!~=:")
_TABLE_HEAD = ["| status | verdict | events | run |", "|---|---|---|---|"]


def md_escape(text) -> str:
    """Escape user data for GitHub-flavoured Markdown, safe inside table cells and headings.

    HTML-significant characters and `|` become entities (they can never form a tag or split a
    table cell), other Markdown punctuation is backslash-escaped, `@` gets a zero-width space
    so names cannot ping people, and newlines/control characters are flattened.
    """
    out = []
    for ch in clean(text):
        if ch in _MD_ENTITIES:
            out.append(_MD_ENTITIES[ch])
        elif ch in _MD_BACKSLASH:
            out.append("\\" + ch)
        elif ch == "@":
            out.append("@\u200b")
        else:
            out.append(ch)
    return "".join(out)


def size(text: str) -> int:
    """Length as GitHub may count it: UTF-16 code units (a character outside the BMP is 2)."""
    return len(text.encode("utf-16-le")) // 2


def _row(run: dict) -> str:
    status = run.get("status", "ok")
    events = ", ".join(md_escape(code) for code in _events(run))
    return (
        f"| {_MD_ICON.get(status, '')} {md_escape(status)} | {md_escape(verdict_text(run))} "
        f"| {events or '-'} | {md_escape(run.get('run', ''))} |"
    )


def _section(run: dict) -> List[str]:
    name = str(run.get("run", ""))
    out = [f"### {_MD_ICON.get(run.get('status'), '')} {md_escape(name)}", "",
           f"Verdict: **{md_escape(verdict_text(run))}**", ""]
    for f in _sorted_findings(run.get("findings", [])):
        line = f"**{md_escape(f.get('severity', 'info'))}: {md_escape(f.get('title', ''))}**"
        where = _step_text(f)
        if where:
            line += f" ({md_escape(where)})"
        out += [line, ""]
        if f.get("summary"):
            out += [md_escape(f["summary"]), ""]
        if f.get("tags"):
            # "run:tag" keys; under the run's own heading the tag says it all (long sweep names).
            tags = [t[len(name) + 1:] if t.startswith(name + ":") else t for t in map(str, f["tags"])]
            out += ["Curves: " + ", ".join(md_escape(t) for t in tags), ""]
        if f.get("advice"):
            out += [f"- {md_escape(tip)}" for tip in f["advice"]] + [""]
    return out


def _notes(report: dict) -> List[str]:
    out = []
    if report.get("sampled"):
        out += ["_Some curves were sampled by TensorBoard; steps are approximate._", ""]
    problems = report.get("problems") or []
    if problems:
        n = len(problems)
        out += [f"<details><summary>Could not use {n} {plural(n, 'item')}</summary>", ""]
        out += [f"- {md_escape(_problem_text(p))}" for p in problems[:MAX_PROBLEMS_LISTED]]
        if n > MAX_PROBLEMS_LISTED:
            out.append(f"- ... and {n - MAX_PROBLEMS_LISTED} more (see `--format text`)")
        out += ["", "</details>", ""]
    return out


def _left_out_line(total: int, no_details: int, unlisted: int, ok_unlisted: int) -> str:
    parts = []
    if no_details:
        parts.append(f"{no_details} that need attention are listed without their details")
    if unlisted:
        parts.append(f"{unlisted} that need attention are not listed")
    if ok_unlisted:
        parts.append(f"{ok_unlisted} with no problem are not listed")
    n = no_details + unlisted + ok_unlisted
    return (
        f"> **{n} of {total} {plural(total, 'run')} left out** to fit GitHub's "
        f"{GITHUB_LIMIT:,}-character limit: {'; '.join(parts)}. See every run with "
        "`lossdoctor LOGDIR --format text`, or report fewer runs at a time with `--run REGEX`."
    )


def render_markdown(report: dict, *, info: Optional[dict] = None, limit: int = DEFAULT_LIMIT) -> str:
    """Markdown of at most `limit` characters (as `size` counts them): the runs that need
    attention first (table, then one section each), the others collapsed in `<details>`."""
    runs = report.get("runs", [])
    attention = [r for r in runs if r.get("status", "ok") != "ok"]
    fine = [r for r in runs if r.get("status", "ok") == "ok"]
    head = [f"## Loss Doctor: {summary_line(report)}", ""] + sweep_view.markdown_lines(report)
    notes = _notes(report)
    ok_open = [f"<details><summary>{len(fine)} {plural(len(fine), 'run')} with no problem found"
               "</summary>", ""] + _TABLE_HEAD
    ok_close = ["", "</details>", ""]
    # Reserve what is always written, with the widest left-out line, then fill in priority order.
    fixed = head + notes + _TABLE_HEAD + [""] + ok_open + ok_close
    widest = _left_out_line(len(runs), len(runs), len(runs), len(runs))
    room = limit - size("\n".join(fixed)) - size(widest + "\n\n")

    def take(lines: List[str]) -> bool:
        nonlocal room
        cost = size("\n".join(lines)) + 1
        if cost > room:
            return False
        room -= cost
        return True

    rows = []
    for run in attention:
        if not take([_row(run)]):
            break
        rows.append(_row(run))
    sections: List[str] = []
    detailed = 0
    for run in attention[: len(rows)]:
        lines = _section(run)
        if not take(lines):
            break
        sections += lines
        detailed += 1
    ok_rows = []
    for run in fine:
        if not take([_row(run)]):
            break
        ok_rows.append(_row(run))

    out = list(head)
    counts = (len(rows) - detailed, len(attention) - len(rows), len(fine) - len(ok_rows))
    if any(counts):
        out += [_left_out_line(len(runs), *counts), ""]
    if rows:
        out += _TABLE_HEAD + rows + [""] + sections
    elif not attention:
        out += ["No run needs attention." if runs else "No run groups to diagnose.", ""]
    if ok_rows:
        out += ok_open + ok_rows + ok_close
    out += notes
    return "\n".join(out).rstrip("\n") + "\n"
