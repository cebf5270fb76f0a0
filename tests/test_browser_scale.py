"""The Diagnosis tab on 10,000 runs, in a real TensorBoard (issue #13, "Sweep scale").

A 10,000-run logdir (two tags x 50 points per run: one event file per curve shape, written with
TensorBoard's own `EventFileWriter` and copied into the run folders, so it takes seconds; one run
has an HTML injection attempt for a name) is served by a real `tensorboard --logdir` (the default backend:
the Rust data server). Once TensorBoard lists every run, headless Chromium opens the Diagnosis
tab and the test checks what a reader sees:
- the first cards shown are the worst runs (status error first, then warning, then healthy);
- if the first answer was partial (the report still being built after 3 s), the tab says how
  many runs are still being diagnosed (diagnosed + pending = 10,000), and the cards of the
  pending runs it received say 'Diagnosing…' (they come after the diagnosed runs, so the run
  filter narrows the list to them); once the report is complete, those same cards show their
  diagnosis (a first answer that is already complete, on a fast machine, skips this part);
- then the complete report: the tab states 10,000 runs diagnosed, no pending note or pending
  card is left, and the order and the counts are those of the plugin's report;
- the hostile run name is text (no <img> element, its onerror never ran), no uncaught error.

Times (TensorBoard listing every run, first card, complete report) are printed, never
asserted: the machine is shared. benchmarks/tab_scale.py measures them against the targets.
Needs what test_browser_e2e.py needs (the package installed, the bundle built, Playwright and
/usr/bin/chromium); skips without Chromium or Playwright except under CI.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import time
import urllib.error
from importlib import metadata
from pathlib import Path

import pytest

from tensorboard_process import REPORT, get_json, launched_tensorboard
from test_browser_e2e import browser  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
RUNS = 10_000
POINTS = 50
HOSTILE = "<img src=x onerror=window.__x=1>"
WALL0 = 1_700_000_000.0

pytestmark = pytest.mark.timeout(420)

# Curve shapes (train_loss, val_loss) over POINTS steps; runs cycle through them: half healthy,
# three in ten error (NaN, blow-up, flat: not learning), two in ten warning. Run 0 is healthy, so
# name order is not worst-first order.
SHAPES = ("healthy", "nan", "overfitting", "healthy", "flat", "healthy", "blowup", "oscillating", "healthy", "healthy")


def _curves(shape: str, n: int = POINTS):
    x = [i / (n - 1) for i in range(n)]
    wiggle = [0.005 * math.sin(7.3 * i) for i in range(n)]
    base = [0.2 + 1.8 * math.exp(-5.0 * t) + w for t, w in zip(x, wiggle)]
    if shape == "healthy":
        return base, [b + 0.05 for b in base]
    if shape == "overfitting":  # validation bottoms out at 40% of training, then climbs
        return base, [min(b, 0.6) + max(0.0, t - 0.4) * 1.2 + 0.05 + w for b, t, w in zip(base, x, wiggle)]
    if shape == "nan":  # the loss turns NaN at 70% of training
        return ([b if t < 0.7 else float("nan") for b, t in zip(base, x)],
                [b + 0.1 if t < 0.7 else float("nan") for b, t in zip(base, x)])
    if shape == "flat":
        return [0.7 + w for w in wiggle], [0.72 + w for w in wiggle]
    if shape == "blowup":  # fine, then the loss explodes for the last 15%
        return ([b if t < 0.85 else b * 10.0 ** (1 + 20 * (t - 0.85)) for b, t in zip(base, x)],
                [b + 0.05 if t < 0.85 else b * 10.0 ** (1 + 20 * (t - 0.85)) for b, t in zip(base, x)])
    if shape == "oscillating":
        return ([b + 0.4 * (1 if i % 2 else -1) * (1 - t) for i, (b, t) in enumerate(zip(base, x))],
                [b + 0.1 + 0.3 * (1 if i % 3 else -1) for i, b in enumerate(base)])
    raise ValueError(shape)


def run_name(i: int) -> str:
    return "run%05d_%s" % (i, SHAPES[i % len(SHAPES)])


def write_logdir(out: Path, runs: int = RUNS, points: int = POINTS, hostile: bool = True) -> Path:
    """`runs` run folders under OUT/logs (the last one named HOSTILE when `hostile`), each a copy
    of one of the SHAPES' event files written with EventFileWriter. Returns OUT/logs."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    templates = {}
    for shape in dict.fromkeys(SHAPES):
        d = out / "_templates" / shape
        d.mkdir(parents=True)
        w = EventFileWriter(str(d), flush_secs=3600)
        for step, (train, val) in enumerate(zip(*_curves(shape, points))):
            values = [summary_pb2.Summary.Value(tag="train_loss", simple_value=float(train)),
                      summary_pb2.Summary.Value(tag="val_loss", simple_value=float(val))]
            w.add_event(event_pb2.Event(wall_time=WALL0 + step, step=step, summary=summary_pb2.Summary(value=values)))
        w.close()
        [name] = os.listdir(d)
        templates[shape] = d / name
    logs = out / "logs"
    for i in range(runs):
        name = HOSTILE if hostile and i == runs - 1 else run_name(i)
        src = templates["nan" if name == HOSTILE else SHAPES[i % len(SHAPES)]]
        (logs / name).mkdir(parents=True)
        shutil.copyfile(src, logs / name / src.name)
    return logs


# -- TensorBoard ---------------------------------------------------------------------------------


@contextlib.contextmanager
def tensorboard(logdir: Path, extra_args=()):
    """A real `tensorboard --logdir LOGDIR` on a free loopback port (default backend: TensorBoard
    picks its Rust data server); yields (process, base URL, monotonic start time); always stopped."""
    with launched_tensorboard(logdir, extra_args) as (proc, base, _port, _log, start):
        yield proc, base, start


def wait_listed(proc, base: str, runs: int, timeout: float = 300.0) -> float:
    """Poll `/data/runs` until it lists `runs` runs; returns the monotonic time it did."""
    deadline = time.monotonic() + timeout
    listed = None
    while True:
        if proc.poll() is not None:
            pytest.fail(f"tensorboard exited early (code {proc.returncode})")
        try:
            listed = len(get_json(base + "/data/runs", timeout=30))
        except (urllib.error.URLError, ConnectionError, OSError, ValueError):
            pass
        if listed == runs:
            return time.monotonic()
        if time.monotonic() > deadline:
            pytest.fail(f"TensorBoard listed {listed} of {runs} runs after {timeout:.0f} s")
        time.sleep(0.2)


def plugin_frame(page, timeout: float = 120.0):
    """The Diagnosis tab's iframe (data/plugin_entry.html?name=lossdoctor), without waiting for cards."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for frame in page.frames:
            if "plugin_entry.html" in frame.url and "lossdoctor" in frame.url:
                return frame
        page.wait_for_timeout(100)
    raise AssertionError("the Diagnosis tab's iframe never loaded; frames: %s" % [f.url for f in page.frames])


# -- what the tab shows --------------------------------------------------------------------------

# The tab's state in one evaluation: run cards in order with their badge, the pending note, the
# summary and the "Showing ..." line. Null until a card exists (so that, polled at every animation
# frame, it captures the first render of cards).
STATE_JS = """() => {
  const cards = [...document.querySelectorAll('.ld-card')];
  if (!cards.length) return null;
  const note = document.querySelector('.ld-pending-note');
  const text = (sel) => (document.querySelector(sel) || {}).textContent || '';
  return {
    cards: cards.map((c) => {
      const b = c.querySelector('.ld-card-head .ld-badge');
      const m = b && /ld-badge-(\\w+)/.exec(b.className);
      return [c.dataset.run, (b && b.dataset.sev) || (m && m[1]) || '?'];
    }),
    pending: !!note && !note.hidden,
    note: note ? note.textContent : '',
    summary: text('.ld-summary'),
    shown: text('.ld-shown'),
    at: performance.now(),
  };
}"""

def js_escape(text: str) -> str:
    """`text` as a literal in a JavaScript regular expression (re.escape escapes too much for JS)."""
    return re.sub(r"[\\^$.*+?()[\]{}|/-]", lambda m: "\\" + m.group(0), text)


RANK = {"error": 3, "warning": 2, "info": 1, "ok": 0}


def number(text: str, pattern: str) -> int:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in {text!r}"
    return int(m.group(1).replace(",", ""))


def summary_counts(summary: str) -> dict:
    counts = {"runs": number(summary, r"([\d,]+) runs? diagnosed")}
    for key, pattern in (("error", r"([\d,]+) errors?"), ("warning", r"([\d,]+) warnings?"), ("ok", r"([\d,]+) healthy")):
        m = re.search(pattern, summary)
        counts[key] = int(m.group(1).replace(",", "")) if m else 0
    return counts


def check_worst_first(cards) -> None:
    """Diagnosed cards come first, worst first (error, warning, healthy); then any pending ones."""
    statuses = [sev for _, sev in cards]
    diagnosed = [s for s in statuses if s != "pending"]
    assert diagnosed, f"no diagnosed card among {cards[:5]}"
    assert statuses[:len(diagnosed)] == diagnosed, f"a 'Diagnosing…' card before a diagnosed one: {statuses}"
    assert diagnosed[0] == "error", f"the first card is not an error run: {cards[:5]}"
    ranks = [RANK.get(s, -1) for s in diagnosed]
    assert ranks == sorted(ranks, reverse=True), f"cards not worst first: {statuses}"


def shown_answer(responses, diagnosed: int, pending: int) -> dict:
    """The partial report among the tab's `responses` with that many runs diagnosed and pending."""
    for response in reversed(responses):
        if response.status == 200:
            body = response.json()
            if len(body["runs"]) == diagnosed and (body.get("pending") or {}).get("count") == pending:
                return body
    raise AssertionError(f"no report answer with {diagnosed} runs diagnosed and {pending} pending")


# -- the test ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scale_logdir(tmp_path_factory):
    eps = metadata.entry_points()
    group = eps.select(group="tensorboard_plugins") if hasattr(eps, "select") else eps.get("tensorboard_plugins", [])
    if not any(ep.name == "lossdoctor" for ep in group):
        pytest.fail("the lossdoctor plugin is not registered: run `pip install -e . --no-deps` first")
    if not (ROOT / "tb_lossdoctor" / "static" / "index.js").is_file():
        pytest.fail("tb_lossdoctor/static/index.js is missing: run `npm ci && npm run build` in frontend/")
    t = time.monotonic()
    logs = write_logdir(tmp_path_factory.mktemp("scale"))
    print(f"\n{RUNS:,} runs written in {time.monotonic() - t:.1f} s")
    return logs


def test_ten_thousand_runs_in_a_real_tensorboard(browser, scale_logdir):  # noqa: F811 (fixture)
    with tensorboard(scale_logdir) as (proc, base, started):
        listed = wait_listed(proc, base, RUNS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page_errors: list = []
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))
        reports: list = []  # the report responses the tab received, in order
        page.on("response", lambda r: reports.append(r) if "/data/plugin/lossdoctor/report" in r.url else None)
        try:
            opened = time.monotonic()
            page.goto(base + "/#lossdoctor", wait_until="domcontentloaded")
            frame = plugin_frame(page)

            # The first render of cards: the worst runs first, and if the answer was partial,
            # the tab says how many runs are still being diagnosed.
            first = frame.wait_for_function(STATE_JS, polling="raf", timeout=240_000).json_value()
            first_card = time.monotonic()
            check_worst_first(first["cards"])
            assert first["cards"][0][0] != run_name(0)  # run 0 (healthy) leads by name, not by status
            partial = first["pending"]
            waiting: list = []
            pending_cards = "not shown (the first answer was complete)"
            if partial:
                done = summary_counts(first["summary"])["runs"]
                left = number(first["note"], r"Diagnosing ([\d,]+) more runs?")
                assert done + left == RUNS, (first["summary"], first["note"])
                # The runs still pending have cards that say so: narrow the list to the ones the
                # tab received (the first 50 pending names of the answer it shows).
                body = shown_answer(reports, done, left)
                waiting = body["pending"]["runs"][:50]
                regex = frame.locator("#ld-filter-regex")
                regex.fill("^(" + "|".join(map(js_escape, waiting)) + ")$")
                now = frame.wait_for_function(STATE_JS, timeout=20_000).json_value()
                if now["summary"] == first["summary"]:  # still the same answer (the next comes >= 2 s later)
                    assert {run for run, _ in now["cards"]} == set(waiting), now["cards"][:5]
                    assert {sev for _, sev in now["cards"]} == {"pending"}, now["cards"][:5]
                    assert all(frame.locator(".ld-card .ld-badge").evaluate_all(
                        "els => els.map(e => e.textContent.includes('Diagnosing'))"))
                    pending_cards = f"{len(waiting)} checked"
                else:
                    pending_cards = "not checked (the tab had moved on to a later answer)"

            # Then the complete report: no pending note, every run diagnosed.
            frame.wait_for_function(
                """n => { const note = document.querySelector('.ld-pending-note');
                          const s = document.querySelector('.ld-summary').textContent;
                          return note && note.hidden && s.replace(/,/g, '').includes(n + ' runs diagnosed'); }""",
                arg=RUNS, polling=250, timeout=240_000)
            complete = time.monotonic()
            if waiting:  # the cards that said 'Diagnosing…' now have their diagnosis
                now = frame.evaluate(STATE_JS)
                assert {run for run, _ in now["cards"]} == set(waiting)
                assert "pending" not in {sev for _, sev in now["cards"]}, now["cards"][:5]
                frame.locator("#ld-filter-regex").fill("")
                frame.wait_for_function("() => document.querySelectorAll('.ld-card').length >= 50")

            state = frame.evaluate(STATE_JS)
            assert not state["pending"]
            assert state["shown"].strip() == f"Showing all {RUNS:,} runs", state["shown"]
            check_worst_first(state["cards"])
            assert "pending" not in {sev for _, sev in state["cards"]}
            assert len(state["cards"]) <= 200  # a first page, not 10,000 cards

            # What the tab shows is the plugin's report: same order, same counts.
            report = get_json(base + REPORT, timeout=120)
            assert "pending" not in report and len(report["runs"]) == RUNS
            assert [run for run, _ in state["cards"]] == [r["run"] for r in report["runs"][:len(state["cards"])]]
            counts = summary_counts(state["summary"])
            for status in ("error", "warning"):
                assert counts[status] == sum(r["status"] == status for r in report["runs"]), (status, state["summary"])
            assert counts["runs"] == RUNS
            nan_runs = sum(1 for i in range(RUNS - 1) if SHAPES[i % len(SHAPES)] == "nan") + 1
            assert counts["error"] >= nan_runs and counts["warning"] > 0 and counts["ok"] > 0, state["summary"]

            # The hostile run name, one among 10,000, is text.
            frame.locator("#ld-filter-regex").fill("onerror")
            frame.wait_for_function("() => document.querySelectorAll('.ld-card').length === 1")
            card = frame.locator(".ld-card").first
            assert card.get_attribute("data-run") == HOSTILE
            assert card.locator(".ld-run").inner_text() == HOSTILE
            head = card.locator(".ld-card-head")
            if head.get_attribute("aria-expanded") != "true":
                head.click()
            assert card.locator(".ld-finding").first.get_attribute("data-code") == "nan"
            page.wait_for_timeout(500)
            assert frame.evaluate("document.querySelectorAll('img').length") == 0
            assert frame.evaluate("typeof window.__x") == "undefined"
            assert page.evaluate("typeof window.__x") == "undefined"
            assert page_errors == [], f"uncaught errors in the page: {page_errors}"
        finally:
            context.close()

    print(f"\n{RUNS:,} runs, real TensorBoard (default backend): every run listed {listed - started:.1f} s "
          f"after start; tab opened then; first card {first_card - started:.1f} s after start "
          f"({first_card - opened:.1f} s after opening, first answer {'partial' if partial else 'complete'}); "
          f"complete report {complete - started:.1f} s after start ({complete - opened:.1f} s after opening); "
          f"{len(reports)} report requests; 'Diagnosing…' cards {pending_cards}")
