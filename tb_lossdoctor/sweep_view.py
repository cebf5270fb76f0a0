"""The "Across runs" section of the text and Markdown views, rendered from the report's `sweep`.

Pure functions: report dict in, lines out; nothing when the report has no `sweep`. The sentences
are the sweep's own (`sweep.py` writes them once, for every view); hyperparameter names, values
and run names are user data and go through the same escaping as the rest of each view
(`formatting.clean` for text, `markdown_view.md_escape` for Markdown).
"""

from __future__ import annotations

from typing import Callable, List, Optional

MAX_TABLE_ROWS = 40  # per family
MAX_FAMILIES_SHOWN = 6  # tables; the section stays a few thousand characters at most
MAX_FINDINGS_SHOWN = 12
MAX_CHARS = 600  # of one sentence or value in the Markdown view (a recorded value can be long)


def _cut(text: str, limit: int = MAX_CHARS) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _sweep(report: dict) -> Optional[dict]:
    sweep = report.get("sweep")
    return sweep if isinstance(sweep, dict) and sweep.get("hyperparameters") else None


def heading(sweep: dict) -> str:
    """"Across runs: 5 runs, 2 hyperparameters (momentum, optimizer)" (names unescaped)."""
    names = [h["name"] for h in sweep["hyperparameters"]]
    n = len(sweep.get("runs", []))
    return (f"Across runs: {n} run{'s' if n != 1 else ''}, {len(names)} "
            f"hyperparameter{'s' if len(names) != 1 else ''} ({', '.join(names)})")


def family_heading(family: dict) -> str:
    """"verdicts by value, 8 runs under keras_lr_optimizer/" (name unescaped)."""
    n = len(family.get("runs", []))
    where = f" under {family['name']}" if family.get("name") else ""
    return f"verdicts by value, {n} run{'s' if n != 1 else ''}{where}"


def cell_counts(row: dict, outcomes: List[str]) -> List[int]:
    """Runs per outcome in one table row, in the table's outcome order."""
    cells = row.get("cells", {})
    return [len(cells.get(o, [])) for o in outcomes]


def text_lines(report: dict, paint: Callable[[str, str], str] = lambda t, s: t) -> List[str]:
    """The text section (with a blank line before it), or [] when there is no sweep."""
    from tb_lossdoctor.formatting import clean

    sweep = _sweep(report)
    if sweep is None:
        return []
    out = ["", paint(clean(heading(sweep)), "bold")]
    findings = sweep.get("findings", [])
    if not findings:
        out.append("  No setting separates the verdicts cleanly; the table shows them by value.")
    for f in findings[:MAX_FINDINGS_SHOWN]:
        out.append(f"  * {clean(f.get('text', ''))}")
    hidden = sweep.get("findings_count", len(findings)) - min(len(findings), MAX_FINDINGS_SHOWN)
    if hidden > 0:
        out.append(f"  ... and {hidden} more (--format json lists them)")
    families = sweep.get("families", [])
    for family in families[:MAX_FAMILIES_SHOWN]:
        out.append(paint(f"  {clean(family_heading(family))}:", "dim"))
        out.extend(_text_table(family.get("table", {}), clean))
    if len(families) > MAX_FAMILIES_SHOWN:
        out.append(f"  ... and {len(families) - MAX_FAMILIES_SHOWN} more sweeps (--format json lists them)")
    return out


def _text_table(table: dict, clean) -> List[str]:
    outcomes = table.get("outcomes", [])
    rows = table.get("rows", [])
    out = []
    width = max((len(clean(f"{r['hyperparameter']} = {r['label']}")) for r in rows[:MAX_TABLE_ROWS]), default=0)
    for row in rows[:MAX_TABLE_ROWS]:
        label = clean(f"{row['hyperparameter']} = {row['label']}").ljust(width)
        counts = ", ".join(f"{o} {n}" for o, n in zip(outcomes, cell_counts(row, outcomes)) if n)
        out.append(f"    {label}  {clean(counts)}")
    if len(rows) > MAX_TABLE_ROWS:
        out.append(f"    ... and {len(rows) - MAX_TABLE_ROWS} more values")
    return out


def markdown_lines(report: dict) -> List[str]:
    """The Markdown section (ending with a blank line), or [] when there is no sweep."""
    from tb_lossdoctor.markdown_view import md_escape

    sweep = _sweep(report)
    if sweep is None:
        return []
    out = [f"**{md_escape(_cut(heading(sweep)))}**", ""]
    findings = sweep.get("findings", [])
    if not findings:
        out += ["No setting separates the verdicts cleanly; the table shows them by value.", ""]
    out += [f"- {md_escape(_cut(f.get('text', '')))}" for f in findings[:MAX_FINDINGS_SHOWN]]
    hidden = sweep.get("findings_count", len(findings)) - min(len(findings), MAX_FINDINGS_SHOWN)
    if hidden > 0:
        out.append(f"- ... and {hidden} more (`--format json` lists them)")
    if findings:
        out.append("")
    families = sweep.get("families", [])
    for family in families[:MAX_FAMILIES_SHOWN]:
        out += [f"_{md_escape(family_heading(family))}_", ""] + _markdown_table(family.get("table", {}), md_escape)
    if len(families) > MAX_FAMILIES_SHOWN:
        out += [f"_... and {len(families) - MAX_FAMILIES_SHOWN} more sweeps (`--format json` lists them)_", ""]
    return out


def _markdown_table(table: dict, md_escape) -> List[str]:
    outcomes = table.get("outcomes", [])
    rows = table.get("rows", [])
    out = ["| hyperparameter | value | " + " | ".join(md_escape(o) for o in outcomes) + " |",
           "|---|---|" + "---|" * len(outcomes)]
    for row in rows[:MAX_TABLE_ROWS]:
        counts = [str(n) if n else "" for n in cell_counts(row, outcomes)]
        out.append(f"| {md_escape(_cut(row['hyperparameter'], 80))} | {md_escape(_cut(row['label'], 80))} | "
                   + " | ".join(counts) + " |")
    if len(rows) > MAX_TABLE_ROWS:
        out.append(f"| ... | {len(rows) - MAX_TABLE_ROWS} more values |" + " |" * len(outcomes))
    return out + [""]
