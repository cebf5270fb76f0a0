"""`--format markdown` fits a GitHub comment: checked by rendering it with cmark-gfm (GitHub's
own Markdown parser, through `cmarkgfm`) on reports of 150 real diagnosed run groups."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from conftest import SimpleValueWriter
from tb_lossdoctor import cli
from tb_lossdoctor.engine import diagnose
from tb_lossdoctor.markdown_view import DEFAULT_LIMIT, GITHUB_LIMIT, render_markdown, size
from tb_lossdoctor.series import make_series

cmarkgfm = pytest.importorskip("cmarkgfm")
from cmarkgfm.cmark import Options  # noqa: E402

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "</details><script>alert(1)</script>",
    "a|b",
    "@team",
    "[x](javascript:alert(1))",
]
# Every tag the view may produce; user data must never add one (nor any attribute).
ALLOWED_TAGS = {"h2", "h3", "p", "table", "thead", "tbody", "tr", "th", "td", "details",
                "summary", "strong", "em", "ul", "li", "code", "blockquote"}


def curves(kind: str, n: int = 120, seed: int = 0):
    """(train, validation) loss values of one run: a pathology the engine recognises."""
    rng = np.random.default_rng(seed)
    x = np.arange(n)
    train = 0.2 + 2.0 * np.exp(-5 * x / n) + rng.normal(0, 0.005, n)
    val = train + 0.05 + rng.normal(0, 0.005, n)
    if kind == "overfitting":
        val = val + np.where(x > n // 3, 0.01 * (x - n // 3), 0)
    elif kind == "nan":
        train[n // 2:] = np.nan
    elif kind == "diverging":
        train = 0.5 + 0.02 * x + rng.normal(0, 0.01, n)
        val = train + 0.05
    return train, val


KINDS = ["overfitting", "nan", "diverging", "healthy", "overfitting", "healthy"]


def run_names(n: int):
    names = [f"sweep-2024-05/resnet50_lr={0.001 * (i + 1):.3f}_bs=256_wd=1e-4_seed={i}" for i in range(n)]
    names[: len(HOSTILE)] = HOSTILE
    return names


def sweep_report(n: int) -> dict:
    series = []
    for i, name in enumerate(run_names(n)):
        train, val = curves(KINDS[i % len(KINDS)], seed=i)
        steps = np.arange(len(train)) * 10
        series.append(make_series(name, "train/loss", steps, train))
        series.append(make_series(name, "val/loss", steps, val))
    return diagnose(series)


@pytest.fixture(scope="module")
def big_report():
    report = sweep_report(150)
    assert len(report["runs"]) == 150
    return report


class Structure(HTMLParser):
    """What the rendered HTML holds: every tag, the tables (rows of cell texts, and whether
    inside <details>), the h3 texts and the <summary> texts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.tables, self.h3, self.summaries, self.text = [], [], [], [], []
        self._details = 0
        self._cell = self._row = None
        self._in = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        if tag == "details":
            self._details += 1
        elif tag == "table":
            self.tables.append({"in_details": self._details > 0, "rows": []})
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("h3", "summary"):
            self._in = (tag, [])

    def handle_endtag(self, tag):
        if tag == "details":
            self._details -= 1
        elif tag in ("td", "th"):
            # A zero-width space after "@" keeps names from pinging people: not part of the name.
            self._row.append("".join(self._cell).strip().replace("\u200b", ""))
            self._cell = None
        elif tag == "tr":
            self.tables[-1]["rows"].append(self._row)
        elif self._in and tag == self._in[0]:
            text = "".join(self._in[1]).strip().replace("\u200b", "")
            (self.h3 if tag == "h3" else self.summaries).append(text)
            self._in = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in:
            self._in[1].append(data)


def render(md: str) -> Structure:
    # UNSAFE keeps raw HTML as HTML: a user name that got through unescaped would show up as a tag.
    out = cmarkgfm.github_flavored_markdown_to_html(md, options=Options.CMARK_OPT_UNSAFE)
    parsed = Structure()
    parsed.feed(out)
    parsed.close()
    return parsed


def check_structure(md: str, report: dict) -> dict:
    """Asserts the layout and returns the counts the left-out line must state."""
    doc = render(md)
    assert {t for t, _ in doc.tags} <= ALLOWED_TAGS, {t for t, _ in doc.tags} - ALLOWED_TAGS
    assert all(not attrs for _, attrs in doc.tags)  # no attribute at all: nothing from user data
    runs = report["runs"]
    attention = [r for r in runs if r["status"] != "ok"]
    fine = [r for r in runs if r["status"] == "ok"]
    tables = [t for t in doc.tables if t["rows"][0] == ["status", "verdict", "events", "run"]]
    lead = [t for t in tables if not t["in_details"]]
    collapsed = [t for t in tables if t["in_details"]]
    assert len(lead) <= 1 and len(collapsed) <= 1
    lead_rows = lead[0]["rows"][1:] if lead else []
    ok_rows = collapsed[0]["rows"][1:] if collapsed else []
    # The lead table: the runs that need attention, status first, in the report's order.
    assert [r[3] for r in lead_rows] == [r["run"] for r in attention[: len(lead_rows)]]
    assert all(r[0].split()[-1] in ("error", "warning") for r in lead_rows)
    assert all(len(r) == 4 for r in lead_rows + ok_rows)
    # One section per run with details, in the same order, each one a run of the table.
    names = [h.split(" ", 1)[1] for h in doc.h3]
    assert names == [r[3] for r in lead_rows[: len(names)]]
    # The collapsed table: runs with no problem.
    assert [r[3] for r in ok_rows] == [r["run"] for r in fine[: len(ok_rows)]]
    assert all(r[0].split()[-1] == "ok" for r in ok_rows)
    if ok_rows:
        assert f"{len(fine)} runs with no problem found" in doc.summaries
    left_out = (len(attention) - len(names)) + (len(fine) - len(ok_rows))
    text = html.unescape("".join(doc.text)).replace("\u200b", "")
    return {"left_out": left_out, "text": text, "doc": doc}


def test_a_150_run_sweep_fits_and_says_what_was_left_out(big_report):
    md = render_markdown(big_report)
    assert size(md) <= DEFAULT_LIMIT < GITHUB_LIMIT
    unlimited = render_markdown(big_report, limit=10**9)
    assert size(unlimited) > GITHUB_LIMIT  # the sweep really needs the cap
    facts = check_structure(md, big_report)
    n = facts["left_out"]
    assert n > 0
    line = [p for p in facts["text"].split("\n") if "left out" in p]
    assert len(line) == 1
    assert f"{n} of 150 runs left out" in line[0]
    assert "lossdoctor LOGDIR --format text" in line[0] and "--run REGEX" in line[0]
    # Hostile names are text, not HTML, and did not break the tables.
    for name in HOSTILE:
        assert name in facts["text"]
    assert "<img" not in md and "<script" not in md


def test_the_uncapped_view_has_every_run(big_report):
    md = render_markdown(big_report, limit=10**9)
    facts = check_structure(md, big_report)
    assert facts["left_out"] == 0 and "left out" not in facts["text"]


@pytest.mark.parametrize("limit", [3_000, 12_000, 30_000])
def test_any_cap_is_respected_and_accounted_for(big_report, limit):
    md = render_markdown(big_report, limit=limit)
    assert size(md) <= limit
    facts = check_structure(md, big_report)
    assert f"{facts['left_out']} of 150 runs left out" in facts["text"]


def test_a_small_report_is_whole(capsys):
    report = sweep_report(12)
    md = render_markdown(report)
    facts = check_structure(md, report)
    assert facts["left_out"] == 0 and "left out" not in md
    doc = facts["doc"]
    assert len(doc.h3) == sum(r["status"] != "ok" for r in report["runs"])


def test_the_cli_on_130_real_event_file_runs(tmp_path, capsys):
    names = [f"run_{i:03d}_" + "x" * 40 for i in range(130)]
    for i, name in enumerate(names):
        train, val = curves(KINDS[i % len(KINDS)], n=80, seed=i)
        w = SimpleValueWriter(tmp_path / name)
        w.add("train/loss", [float(v) for v in train]).add("val/loss", [float(v) for v in val])
        w.close()
    code = cli.main([str(tmp_path), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and len(report["runs"]) == 130
    code = cli.main([str(tmp_path), "--format", "markdown"])
    md = capsys.readouterr().out
    assert code == 0
    assert size(md) <= DEFAULT_LIMIT
    facts = check_structure(md, report)
    if facts["left_out"]:
        assert f"{facts['left_out']} of 130 runs left out" in facts["text"]
    assert re.match(r"## Loss Doctor: 130 runs: \d+ errors?, \d+ warnings?, \d+ ok\n", md)
